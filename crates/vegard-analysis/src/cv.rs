//! One call for a CV run: charge bookkeeping plus deformation vs charge, as
//! one serialisable result (the `analysis.json` section the CLI prints).

use serde::Serialize;

use crate::deformation::{CdlSource, CvInput, DeformationVsCharge, deformation_from, prepare};
use crate::{
    AnalysisError, CdlEstimate, Nonlinearity, NonlinearityInput, NonlinearityOptions,
    analyze_nonlinearity,
};

/// Charge passed during the CV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargeSummary {
    /// Net charge at the last sample, integral of I dt.
    pub Q_total_C: f64,
    /// Net faradaic charge at the last sample.
    pub Q_F_total_C: f64,
    /// Integral of the anodic (positive) part of the current.
    pub Q_anodic_C: f64,
    /// Integral of the cathodic (negative) part of the current (<= 0).
    pub Q_cathodic_C: f64,
    pub C_dl_F: f64,
    pub C_dl_source: CdlSource,
    /// Details of the vertex-jump estimate, when that was the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub C_dl_estimate: Option<CdlEstimate>,
    /// Why C_dl could not be estimated, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub C_dl_note: Option<String>,
    pub n_samples: usize,
}

/// Result of [`analyze_cv`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvAnalysis {
    pub charge: ChargeSummary,
    pub deformation_vs_charge: DeformationVsCharge,
    /// Harmonics, quadratic regression, hysteresis and verdicts over the
    /// complete cycles (when the input gave the period and there was one).
    pub nonlinearity: Option<Nonlinearity>,
    /// Why there is no nonlinearity analysis, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonlinearity_note: Option<String>,
}

/// Charge and deformation-vs-charge analysis of aligned CV samples.
pub fn analyze_cv(input: &CvInput<'_>) -> Result<CvAnalysis, AnalysisError> {
    let p = prepare(input)?;
    let deformation_vs_charge = deformation_from(input, &p)?;
    let last_finite = |v: &[f64]| {
        v.iter()
            .rev()
            .copied()
            .find(|x| x.is_finite())
            .unwrap_or(0.0)
    };
    // `f64::max` would turn NaN into 0; keep it NaN so the integral bridges it.
    let part = |keep: fn(f64) -> bool| -> Vec<f64> {
        input
            .I_A
            .iter()
            .map(|&i| if i.is_nan() || keep(i) { i } else { 0.0 })
            .collect()
    };
    let anodic = part(|i| i > 0.0);
    let cathodic = part(|i| i < 0.0);
    let Q_anodic_C = last_finite(&crate::cumulative_charge_C(input.t_s, &anodic)?);
    let Q_cathodic_C = last_finite(&crate::cumulative_charge_C(input.t_s, &cathodic)?);
    let (nonlinearity, nonlinearity_note) = match input.period_s {
        None => (None, Some("no drive period given".to_owned())),
        Some(period_s) => {
            let nl = NonlinearityInput {
                t_s: input.t_s,
                E_V: input.E_V,
                Q_F_C: &p.Q_F_C,
                deflection_nm: input.deflection_nm,
                cycle: input.cycle,
                period_s,
            };
            // Too little data for it is a note, not a failed CV analysis.
            match analyze_nonlinearity(&nl, &NonlinearityOptions::default()) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(format!("nonlinearity not analysed: {e}"))),
            }
        }
    };
    Ok(CvAnalysis {
        nonlinearity,
        nonlinearity_note,
        charge: ChargeSummary {
            Q_total_C: last_finite(&p.Q_C),
            Q_F_total_C: last_finite(&p.Q_F_C),
            Q_anodic_C,
            Q_cathodic_C,
            C_dl_F: p.C_dl_F,
            C_dl_source: p.source,
            C_dl_estimate: p.estimate,
            C_dl_note: p.note,
            n_samples: input.t_s.len(),
        },
        deformation_vs_charge,
    })
}
