//! The meter's SCPI command tree (34465A subset) and its handlers, built on
//! the `scpi` parser and the IEEE 488.2 commands of `scpi-contrib`.
//!
//! `SYSTem:ERRor?` is written here rather than taken from `scpi_system!`
//! because the meter formats the code with a sign (`+0,"No error"`), which
//! drivers written for the real instrument may rely on.

use crate::ieee488::ESR_OPC;

use super::{Dmm, MAX_SAMPLE_COUNT, TrigSource, format_number, range_for};
use scpi::error::{Error, ErrorCode, Result};
use scpi::parser::format::{Arbitrary, Character};
use scpi::parser::mnemonic_compare;
use scpi::tree::prelude::*;
use scpi::{Branch, Leaf, Root, cmd_both, cmd_nquery, cmd_qonly};
use scpi_contrib::ieee488::IEEE4882;
use scpi_contrib::{ieee488_cls, ieee488_idn, ieee488_opc, ieee488_rst};

/// Longest `SAMP:TIM` / `TRIG:DEL`, s.
const MAX_TIME_S: f64 = 3600.0;
/// Shortest `SAMP:TIM`, s (the 34465A's digitizing limit).
const MIN_SAMPLE_TIME_S: f64 = 2e-5;

impl Device for Dmm {
    fn handle_error(&mut self, err: Error) {
        self.push_error(err);
    }
}

impl IEEE4882 for Dmm {
    fn sre(&self) -> u8 {
        self.sre
    }
    fn set_sre(&mut self, value: u8) {
        self.sre = value;
    }
    fn esr(&self) -> u8 {
        self.esr
    }
    fn set_esr(&mut self, value: u8) {
        self.esr = value;
    }
    fn ese(&self) -> u8 {
        self.ese
    }
    fn set_ese(&mut self, value: u8) {
        self.ese = value;
    }
    fn tst(&mut self) -> Result<()> {
        Ok(())
    }
    fn rst(&mut self) -> Result<()> {
        self.reset();
        Ok(())
    }
    fn cls(&mut self) -> Result<()> {
        self.errors.clear();
        self.esr = 0;
        Ok(())
    }
    fn opc(&mut self) -> Result<()> {
        self.esr |= ESR_OPC;
        Ok(())
    }
}

pub(crate) const TREE: Node<Dmm> = Root![
    ieee488_idn!(
        b"Keysight Technologies",
        b"34465A",
        b"VEGARD-SIM-0001",
        b"A.03.02-vegard"
    ),
    ieee488_rst!(),
    ieee488_cls!(),
    ieee488_opc!(),
    Leaf!(b"*TRG" => &TrgCommand),
    Branch!(b"SYSTem"; Branch!(b"ERRor"; Leaf!(default b"NEXT" => &SystErrNextCommand))),
    Branch!(b"CONFigure";
        Branch!(b"VOLTage"; Leaf!(default b"DC" => &ConfVoltDcCommand))
    ),
    Branch!(default b"SENSe";
        Branch!(b"VOLTage";
            Branch!(default b"DC";
                Leaf!(b"RANGe" => &SensVoltDcRangeCommand),
                Leaf!(b"APERture" => &SensVoltDcApertureCommand),
                Leaf!(b"NPLCycles" => &SensVoltDcNplcCommand)
            )
        )
    ),
    Branch!(b"TRIGger";
        Leaf!(b"SOURce" => &TrigSourceCommand),
        Leaf!(b"SLOPe" => &TrigSlopeCommand),
        Leaf!(b"DELay" => &TrigDelayCommand)
    ),
    Branch!(b"SAMPle";
        Leaf!(b"SOURce" => &SampSourceCommand),
        Leaf!(b"TIMer" => &SampTimerCommand),
        Leaf!(b"COUNt" => &SampCountCommand)
    ),
    Branch!(b"FORMat"; Leaf!(default b"DATA" => &FormDataCommand)),
    Branch!(b"INITiate"; Leaf!(default b"IMMediate" => &InitCommand)),
    Leaf!(b"ABORt" => &AbortCommand),
    Branch!(b"DATA"; Leaf!(b"POINts" => &DataPointsCommand)),
    Leaf!(b"R" => &RQueryCommand)
];

/// A numeric parameter in `[min, max]`, also accepting `MIN`, `MAX`, `DEF`.
fn numeric(params: &mut Parameters, min: f64, max: f64, default: f64) -> Result<f64> {
    match params.next_token()? {
        Token::CharacterProgramData(s) => {
            if mnemonic_compare(b"MINimum", s) {
                Ok(min)
            } else if mnemonic_compare(b"MAXimum", s) {
                Ok(max)
            } else if mnemonic_compare(b"DEFault", s) {
                Ok(default)
            } else {
                Err(ErrorCode::IllegalParameterValue.into())
            }
        }
        tok => {
            let v = f64::try_from(tok)?;
            if v.is_finite() && (min..=max).contains(&v) {
                Ok(v)
            } else {
                Err(ErrorCode::DataOutOfRange.into())
            }
        }
    }
}

/// A character parameter, matched against the given mnemonics (long forms
/// with the short form in capitals); returns the index of the match.
fn choice(params: &mut Parameters, options: &[&[u8]]) -> Result<usize> {
    match params.next_token()? {
        Token::CharacterProgramData(s) => options
            .iter()
            .position(|o| mnemonic_compare(o, s))
            .ok_or_else(|| ErrorCode::IllegalParameterValue.into()),
        _ => Err(ErrorCode::DataTypeError.into()),
    }
}

fn reply(mut response: ResponseUnit, text: &str) -> Result<()> {
    response.data(Character(text.as_bytes())).finish()
}

/// `CONF:VOLT:DC [<range>|AUTO|MIN|MAX|DEF[,<resolution>]]`.
struct ConfVoltDcCommand;
impl Command<Dmm> for ConfVoltDcCommand {
    cmd_nquery!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        let range_V = match params.next_optional_token()? {
            None => None,
            Some(Token::CharacterProgramData(s))
                if mnemonic_compare(b"AUTO", s) || mnemonic_compare(b"DEFault", s) =>
            {
                None
            }
            Some(Token::CharacterProgramData(s)) if mnemonic_compare(b"MINimum", s) => Some(0.1),
            Some(Token::CharacterProgramData(s)) if mnemonic_compare(b"MAXimum", s) => Some(1000.0),
            Some(tok) => {
                let v = f64::try_from(tok)?;
                Some(range_for(v).ok_or(Error::new(ErrorCode::DataOutOfRange))?)
            }
        };
        // The resolution argument is accepted and ignored: readings are not
        // quantised.
        let _ = params.next_optional_token()?;
        dmm.configure_dcv(range_V);
        Ok(())
    }
}

/// `[SENS:]VOLT[:DC]:RANG <range>|AUTO|MIN|MAX|DEF`, `...:RANG?`.
struct SensVoltDcRangeCommand;
impl Command<Dmm> for SensVoltDcRangeCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.range_V = match params.next_token()? {
            Token::CharacterProgramData(s) if mnemonic_compare(b"AUTO", s) => None,
            Token::CharacterProgramData(s) if mnemonic_compare(b"MINimum", s) => Some(0.1),
            Token::CharacterProgramData(s)
                if mnemonic_compare(b"MAXimum", s) || mnemonic_compare(b"DEFault", s) =>
            {
                Some(1000.0)
            }
            tok => {
                Some(range_for(f64::try_from(tok)?).ok_or(Error::new(ErrorCode::DataOutOfRange))?)
            }
        };
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format_number(dmm.cfg.range_V.unwrap_or(10.0)))
    }
}

/// `[SENS:]VOLT[:DC]:APER <s>`: integration time in seconds.
struct SensVoltDcApertureCommand;
impl Command<Dmm> for SensVoltDcApertureCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.aperture_s = Some(numeric(&mut params, 2e-5, 1.0, 0.1)?);
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format_number(dmm.cfg.integration_s()))
    }
}

/// `[SENS:]VOLT[:DC]:NPLC <n>`: integration time in mains cycles.
struct SensVoltDcNplcCommand;
impl Command<Dmm> for SensVoltDcNplcCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.nplc = numeric(&mut params, 1e-3, 100.0, 10.0)?;
        dmm.cfg.aperture_s = None;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format_number(dmm.cfg.nplc))
    }
}

/// `TRIG:SOUR IMM|EXT|BUS`.
struct TrigSourceCommand;
impl Command<Dmm> for TrigSourceCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        if dmm.is_busy() {
            return Err(ErrorCode::SettingsConflict.into());
        }
        dmm.cfg.trig_source = match choice(&mut params, &[b"IMMediate", b"EXTernal", b"BUS"])? {
            0 => TrigSource::Immediate,
            1 => TrigSource::External,
            _ => TrigSource::Bus,
        };
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        let name = match dmm.cfg.trig_source {
            TrigSource::Immediate => "IMM",
            TrigSource::External => "EXT",
            TrigSource::Bus => "BUS",
        };
        reply(r, name)
    }
}

/// `TRIG:SLOP POS|NEG`: which edge of the external trigger input counts.
struct TrigSlopeCommand;
impl Command<Dmm> for TrigSlopeCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.trig_slope_rising = choice(&mut params, &[b"POSitive", b"NEGative"])? == 0;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(
            r,
            if dmm.cfg.trig_slope_rising {
                "POS"
            } else {
                "NEG"
            },
        )
    }
}

/// `TRIG:DEL <s>`: delay from the trigger to the first reading.
struct TrigDelayCommand;
impl Command<Dmm> for TrigDelayCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.trig_delay_s = numeric(&mut params, 0.0, MAX_TIME_S, 0.0)?;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format_number(dmm.cfg.trig_delay_s))
    }
}

/// `SAMP:SOUR IMM|TIM`: back-to-back readings or a fixed sample period.
struct SampSourceCommand;
impl Command<Dmm> for SampSourceCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.sample_timer = choice(&mut params, &[b"IMMediate", b"TIMer"])? == 1;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, if dmm.cfg.sample_timer { "TIM" } else { "IMM" })
    }
}

/// `SAMP:TIM <s>`: sample period on the meter's timebase.
struct SampTimerCommand;
impl Command<Dmm> for SampTimerCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        dmm.cfg.samp_tim_s = numeric(&mut params, MIN_SAMPLE_TIME_S, MAX_TIME_S, 1.0)?;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format_number(dmm.cfg.samp_tim_s))
    }
}

/// `SAMP:COUN <n>`: readings per trigger, 1..1 000 000.
struct SampCountCommand;
impl Command<Dmm> for SampCountCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        let n = numeric(&mut params, 1.0, MAX_SAMPLE_COUNT as f64, 1.0)?;
        dmm.cfg.samp_count = n.round() as u64;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format!("{:+}", dmm.cfg.samp_count))
    }
}

/// `FORM[:DATA] ASC[,<digits>]|REAL[,64]`.
struct FormDataCommand;
impl Command<Dmm> for FormDataCommand {
    cmd_both!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, mut params: Parameters) -> Result<()> {
        let ascii = choice(&mut params, &[b"ASCii", b"REAL"])? == 0;
        if let Some(tok) = params.next_optional_token()? {
            let width = f64::try_from(tok)?;
            if !ascii && width != 64.0 {
                return Err(ErrorCode::IllegalParameterValue.into());
            }
        }
        dmm.cfg.ascii = ascii;
        Ok(())
    }
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, if dmm.cfg.ascii { "ASC,+9" } else { "REAL,+64" })
    }
}

/// `INIT`: clear memory, wait for the trigger.
struct InitCommand;
impl Command<Dmm> for InitCommand {
    cmd_nquery!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters) -> Result<()> {
        dmm.initiate()
    }
}

/// `ABOR`: stop the acquisition, keep the readings.
struct AbortCommand;
impl Command<Dmm> for AbortCommand {
    cmd_nquery!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters) -> Result<()> {
        dmm.abort();
        Ok(())
    }
}

/// `*TRG`: bus trigger.
struct TrgCommand;
impl Command<Dmm> for TrgCommand {
    cmd_nquery!();
    fn event(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters) -> Result<()> {
        dmm.bus_trigger()
    }
}

/// `DATA:POIN?`: readings in memory, `+123`.
struct DataPointsCommand;
impl Command<Dmm> for DataPointsCommand {
    cmd_qonly!();
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        reply(r, &format!("{:+}", dmm.points()))
    }
}

/// `R? [<max>]`: remove and return readings as a definite-length block.
struct RQueryCommand;
impl Command<Dmm> for RQueryCommand {
    cmd_qonly!();
    fn query(
        &self,
        dmm: &mut Dmm,
        _: &mut Context,
        mut params: Parameters,
        mut r: ResponseUnit,
    ) -> Result<()> {
        let max = match params.next_optional_token()? {
            None => None,
            Some(tok) => {
                let v = f64::try_from(tok)?;
                if !(1.0..=2e9).contains(&v) {
                    return Err(ErrorCode::DataOutOfRange.into());
                }
                Some(v.round() as usize)
            }
        };
        let readings = dmm.take_readings(max);
        let payload: Vec<u8> = if dmm.cfg.ascii {
            readings
                .iter()
                .map(|&v| format_number(v))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes()
        } else {
            readings.iter().flat_map(|v| v.to_be_bytes()).collect()
        };
        r.data(Arbitrary(&payload)).finish()
    }
}

/// `SYST:ERR[:NEXT]?`: oldest error, `+0,"No error"` when none.
struct SystErrNextCommand;
impl Command<Dmm> for SystErrNextCommand {
    cmd_qonly!();
    fn query(&self, dmm: &mut Dmm, _: &mut Context, _: Parameters, r: ResponseUnit) -> Result<()> {
        let err = dmm.pop_error().unwrap_or(Error::new(ErrorCode::NoError));
        let message = String::from_utf8_lossy(err.get_message());
        reply(r, &format!("{:+},\"{message}\"", err.get_code()))
    }
}
