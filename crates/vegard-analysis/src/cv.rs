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
    let split = split_charge_C(input.t_s, input.I_A);
    fits(input, p, split)
}

/// [`analyze_cv`] with the current given by value (`input.I_A` is not
/// read): it is dropped once integrated, before the fits, which hold the
/// most memory (for a day of 10 ms samples, 70 MB less at the peak).
pub fn analyze_cv_taking_current(
    input: &CvInput<'_>,
    I_A: Vec<f64>,
) -> Result<CvAnalysis, AnalysisError> {
    let (p, split) = {
        let with = CvInput {
            I_A: &I_A,
            ..*input
        };
        (prepare(&with)?, split_charge_C(with.t_s, with.I_A))
    };
    drop(I_A);
    // Nothing after the charge reads the current.
    fits(&CvInput { I_A: &[], ..*input }, p, split)
}

/// Deformation vs charge and the nonlinearity, from the prepared charge
/// and the (anodic, cathodic) integrals.
fn fits(
    input: &CvInput<'_>,
    p: crate::deformation::Prepared,
    (Q_anodic_C, Q_cathodic_C): (f64, f64),
) -> Result<CvAnalysis, AnalysisError> {
    let deformation_vs_charge = deformation_from(input, &p)?;
    let last_finite = |v: &[f64]| {
        v.iter()
            .rev()
            .copied()
            .find(|x| x.is_finite())
            .unwrap_or(0.0)
    };
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
            Q_total_C: p.Q_total_C,
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

/// (anodic, cathodic) charge, C: the trapezoid integrals of max(I, 0) and
/// min(I, 0) over the samples where t and I are finite, as
/// `cumulative_charge_C` would end them, without a vector of each. Time
/// order was checked by the net charge's integral.
fn split_charge_C(t_s: &[f64], I_A: &[f64]) -> (f64, f64) {
    let (mut anodic, mut cathodic) = (0.0, 0.0);
    let mut prev: Option<(f64, f64)> = None;
    for (&t, &i) in t_s.iter().zip(I_A) {
        if !(t.is_finite() && i.is_finite()) {
            continue;
        }
        if let Some((tp, ip)) = prev {
            let dt = t - tp;
            anodic += 0.5 * (i.max(0.0) + ip.max(0.0)) * dt;
            cathodic += 0.5 * (i.min(0.0) + ip.min(0.0)) * dt;
        }
        prev = Some((t, i));
    }
    (anodic, cathodic)
}
