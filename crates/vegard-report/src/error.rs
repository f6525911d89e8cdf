use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    /// A report spec that does not parse or names something unknown;
    /// the message starts with `FILE:LINE:COL:`.
    #[error("{0}")]
    Spec(String),
    #[error("{path}: {msg}")]
    Input { path: String, msg: String },
    #[error("drawing figure {figure}: {msg}")]
    Plot { figure: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pipeline(#[from] vegard_pipeline::PipelineError),
    #[error(transparent)]
    Store(#[from] vegard_store::StoreError),
}
