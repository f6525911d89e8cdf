//! The meter's SCPI command tree (the 34465A's DC-volts subset) and its
//! handlers, built on the `scpi` parser and the IEEE 488.2 commands of
//! `scpi-contrib`.
//!
//! Every handler follows the meter: a setting out of its range queues -222
//! "Data out of range", a value the setting does not take queues -224
//! "Illegal parameter value", and in both cases the setting is left as it
//! was. Queries of settings take the meter's optional `MIN|MAX|DEF` and
//! answer in its formats (`+1.00000000E-01`, `+5`, `0`/`1`, `"VOLT"`).
//!
//! `SYSTem:ERRor?` is written here rather than taken from `scpi_system!`
//! because the meter formats the code with a sign (`+0,"No error"`), which
//! drivers written for the real instrument may rely on.

use super::{
    Dmm, MAINS_HZ, MAX_SAMPLE_COUNT, MAX_TIME_S, MAX_TRIGGER_COUNT, NPLC_VALUES, OVERLOAD,
    RANGES_V, RESOLUTION_PER_RANGE, Session, TrigSource, format_number, format_setting, range_for,
};
use scpi::error::{Error, ErrorCode, Result};
use scpi::parser::format::{Arbitrary, Character};
use scpi::parser::mnemonic_compare;
use scpi::tree::prelude::*;
use scpi::{Branch, Leaf, Root, cmd_both, cmd_nquery, cmd_qonly};
use scpi_contrib::ieee488::IEEE4882;
use scpi_contrib::{
    ieee488_cls, ieee488_ese, ieee488_esr, ieee488_idn, ieee488_opc, ieee488_rst, ieee488_sre,
    ieee488_stb, ieee488_tst, ieee488_wai,
};

// `VOLT:APER` and `SAMP:TIM` limits with the DIG option, shared with the
// driver and recipe validation.
use vegard_core::keysight_34465a::{
    APERTURE_MAX_S, APERTURE_MIN_S, APERTURE_STEP_S, SAMPLE_TIMER_MAX_S, SAMPLE_TIMER_MIN_S,
    SAMPLE_TIMER_STEP_S,
};
/// `VOLT:APER DEF` and after `*RST`, s.
const APERTURE_DEFAULT_S: f64 = 0.1;
/// Most pretrigger readings without the MEM option.
const MAX_PRETRIGGER: u64 = 49_999;
/// Longest text `DISP:TEXT` shows.
const DISPLAY_TEXT_MAX: usize = 40;
/// Largest trigger level, V (the 1000 V range).
const MAX_LEVEL_V: f64 = 1000.0;
/// Reply of `*OPT?`: the DIG (digitizing) option, which this emulation's
/// 20 us aperture, 0.001 PLC and level trigger belong to; no MEM option.
const OPTIONS: &str = "DIG";

impl Device for Session {
    fn handle_error(&mut self, err: Error) {
        self.lock().push_error(err);
    }
}

impl IEEE4882 for Session {
    /// Status byte with bit 2 (error/event queue not empty) as on the meter.
    fn stb(&self) -> u8 {
        let dmm = self.lock();
        let mut stb = 0;
        if dmm.has_errors() {
            stb |= 1 << 2;
        }
        if dmm.esr & dmm.ese != 0 {
            stb |= 1 << 5;
        }
        if stb & dmm.sre != 0 {
            stb |= 1 << 6;
        }
        stb
    }
    fn sre(&self) -> u8 {
        self.lock().sre
    }
    fn set_sre(&mut self, value: u8) {
        self.lock().sre = value;
    }
    fn esr(&self) -> u8 {
        self.lock().esr
    }
    fn set_esr(&mut self, value: u8) {
        self.lock().esr = value;
    }
    fn ese(&self) -> u8 {
        self.lock().ese
    }
    fn set_ese(&mut self, value: u8) {
        self.lock().ese = value;
    }
    fn tst(&mut self) -> Result<()> {
        Ok(())
    }
    fn rst(&mut self) -> Result<()> {
        self.lock().reset();
        Ok(())
    }
    fn cls(&mut self) -> Result<()> {
        let mut dmm = self.lock();
        dmm.errors.clear();
        dmm.esr = 0;
        dmm.ques_event = 0;
        Ok(())
    }
    fn opc(&mut self) -> Result<()> {
        self.lock().esr |= crate::ieee488::ESR_OPC;
        Ok(())
    }
}

pub(crate) const TREE: Node<Session> = Root![
    ieee488_idn!(
        b"Keysight Technologies",
        b"34465A",
        b"VEGARD-SIM-0001",
        b"A.03.02-vegard"
    ),
    ieee488_rst!(),
    ieee488_cls!(),
    ieee488_opc!(),
    ieee488_ese!(),
    ieee488_esr!(),
    ieee488_sre!(),
    ieee488_stb!(),
    ieee488_tst!(),
    ieee488_wai!(),
    Leaf!(b"*TRG" => &TrgCommand),
    Leaf!(b"*OPT" => &OptCommand),
    Branch!(b"SYSTem";
        Branch!(b"ERRor"; Leaf!(default b"NEXT" => &SystErrNextCommand)),
        Leaf!(b"LFRequency" => &SystLfrCommand),
        Leaf!(b"VERSion" => &SystVersionCommand),
        Branch!(b"LICense"; Leaf!(b"CATalog" => &SystLicenseCommand))
    ),
    Branch!(b"CONFigure";
        Leaf!(default b"FUNCtion" => &ConfQueryCommand),
        Branch!(b"VOLTage"; Leaf!(default b"DC" => &ConfVoltDcCommand))
    ),
    Branch!(b"MEASure";
        Branch!(b"VOLTage"; Leaf!(default b"DC" => &MeasVoltDcCommand))
    ),
    Branch!(default b"SENSe";
        Leaf!(b"FUNCtion" => &SensFunctionCommand),
        Branch!(b"VOLTage";
            Branch!(default b"DC";
                Branch!(b"RANGe";
                    Leaf!(default b"UPPer" => &SensRangeCommand),
                    Leaf!(b"AUTO" => &SensRangeAutoCommand)
                ),
                Branch!(b"APERture";
                    Leaf!(default b"TIME" => &SensApertureCommand),
                    Leaf!(b"ENABled" => &SensApertureEnabledCommand)
                ),
                Leaf!(b"NPLCycles" => &SensNplcCommand),
                Leaf!(b"RESolution" => &SensResolutionCommand),
                Branch!(b"ZERO"; Leaf!(b"AUTO" => &SensZeroAutoCommand)),
                Branch!(b"IMPedance"; Leaf!(b"AUTO" => &SensImpedanceAutoCommand))
            )
        )
    ),
    Branch!(b"TRIGger";
        Leaf!(b"SOURce" => &TrigSourceCommand),
        Leaf!(b"SLOPe" => &TrigSlopeCommand),
        Branch!(b"DELay";
            Leaf!(default b"TIME" => &TrigDelayCommand),
            Leaf!(b"AUTO" => &TrigDelayAutoCommand)
        ),
        Leaf!(b"COUNt" => &TrigCountCommand),
        Leaf!(b"LEVel" => &TrigLevelCommand)
    ),
    Branch!(b"SAMPle";
        Leaf!(b"SOURce" => &SampSourceCommand),
        Leaf!(b"TIMer" => &SampTimerCommand),
        Branch!(b"COUNt";
            Leaf!(default b"VALue" => &SampCountCommand),
            Leaf!(b"PRETrigger" => &SampPretriggerCommand)
        )
    ),
    Branch!(b"FORMat"; Leaf!(default b"DATA" => &FormDataCommand)),
    Branch!(b"INITiate"; Leaf!(default b"IMMediate" => &InitCommand)),
    Leaf!(b"ABORt" => &AbortCommand),
    Leaf!(b"READ" => &ReadCommand),
    Leaf!(b"FETCh" => &FetchCommand),
    Branch!(b"DATA";
        Leaf!(b"POINts" => &DataPointsCommand),
        Leaf!(b"REMove" => &DataRemoveCommand),
        Leaf!(b"LAST" => &DataLastCommand)
    ),
    Leaf!(b"R" => &RQueryCommand),
    Branch!(b"STATus";
        Branch!(b"QUEStionable";
            Leaf!(default b"EVENt" => &StatQuesCommand { latched: true }),
            Leaf!(b"CONDition" => &StatQuesCommand { latched: false })
        )
    ),
    Branch!(b"DISPlay";
        Leaf!(default b"STATe" => &DispStateCommand),
        Branch!(b"TEXT";
            Leaf!(default b"DATA" => &DispTextCommand),
            Leaf!(b"CLEar" => &DispTextClearCommand)
        )
    )
];

/// What a numeric parameter asked for.
enum Numeric {
    Min,
    Max,
    Def,
    Value(f64),
}

fn numeric_token(tok: Token) -> Result<Numeric> {
    match tok {
        Token::CharacterProgramData(s) => {
            if mnemonic_compare(b"MINimum", s) {
                Ok(Numeric::Min)
            } else if mnemonic_compare(b"MAXimum", s) {
                Ok(Numeric::Max)
            } else if mnemonic_compare(b"DEFault", s) {
                Ok(Numeric::Def)
            } else {
                Err(ErrorCode::IllegalParameterValue.into())
            }
        }
        tok => Ok(Numeric::Value(f64::try_from(tok)?)),
    }
}

/// A numeric parameter in `[min, max]`, also accepting `MIN`, `MAX`, `DEF`.
fn numeric(params: &mut Parameters, min: f64, max: f64, default: f64) -> Result<f64> {
    match numeric_token(params.next_token()?)? {
        Numeric::Min => Ok(min),
        Numeric::Max => Ok(max),
        Numeric::Def => Ok(default),
        Numeric::Value(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        Numeric::Value(_) => Err(ErrorCode::DataOutOfRange.into()),
    }
}

/// The optional `MIN|MAX|DEF` of a setting's query: the limit asked for,
/// or the present value.
fn query_value(params: &mut Parameters, now: f64, min: f64, max: f64, def: f64) -> Result<f64> {
    match params.next_optional_token()? {
        None => Ok(now),
        Some(tok) => match numeric_token(tok)? {
            Numeric::Min => Ok(min),
            Numeric::Max => Ok(max),
            Numeric::Def => Ok(def),
            Numeric::Value(_) => Err(ErrorCode::IllegalParameterValue.into()),
        },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    On,
    Off,
    Once,
}

/// `ON|OFF|1|0`, and `ONCE` where the setting has it.
fn switch(params: &mut Parameters, once_allowed: bool) -> Result<Switch> {
    match params.next_token()? {
        Token::CharacterProgramData(s) if mnemonic_compare(b"ON", s) => Ok(Switch::On),
        Token::CharacterProgramData(s) if mnemonic_compare(b"OFF", s) => Ok(Switch::Off),
        Token::CharacterProgramData(s) if once_allowed && mnemonic_compare(b"ONCE", s) => {
            Ok(Switch::Once)
        }
        Token::CharacterProgramData(_) => Err(ErrorCode::IllegalParameterValue.into()),
        tok => {
            let v = f64::try_from(tok)?;
            if v == 1.0 {
                Ok(Switch::On)
            } else if v == 0.0 {
                Ok(Switch::Off)
            } else {
                Err(ErrorCode::IllegalParameterValue.into())
            }
        }
    }
}

fn reply(mut response: ResponseUnit, text: &str) -> Result<()> {
    response.data(Character(text.as_bytes())).finish()
}

fn reply_bool(response: ResponseUnit, on: bool) -> Result<()> {
    reply(response, if on { "1" } else { "0" })
}

/// Readings as the meter sends them: ASCII `+1.23...E-01` separated by
/// commas, or with `FORM REAL,64` a definite-length block of big-endian
/// doubles.
fn reply_readings(mut response: ResponseUnit, ascii: bool, readings: &[f64]) -> Result<()> {
    if ascii {
        let text = readings
            .iter()
            .map(|&v| format_number(v))
            .collect::<Vec<_>>()
            .join(",");
        response.data(Character(text.as_bytes())).finish()
    } else {
        let payload: Vec<u8> = readings.iter().flat_map(|v| v.to_be_bytes()).collect();
        response.data(Arbitrary(&payload)).finish()
    }
}

/// Index in [`NPLC_VALUES`] of an integration time given in PLC, if it is
/// one of the meter's.
fn nplc_index(plc: f64) -> Option<usize> {
    NPLC_VALUES
        .iter()
        .position(|&n| (plc - n).abs() <= n * 1e-6)
}

/// The integration time (PLC) that a resolution asks for on `range_V`: the
/// shortest whose resolution is at least as fine. -222 when it is finer
/// than the best or coarser than the worst the meter has.
fn nplc_for_resolution(res: Numeric, range_V: f64) -> Result<f64> {
    let last = NPLC_VALUES.len() - 1;
    Ok(match res {
        Numeric::Min => NPLC_VALUES[last],
        Numeric::Max => NPLC_VALUES[0],
        Numeric::Def => 10.0,
        Numeric::Value(v) => {
            let best = RESOLUTION_PER_RANGE[last] * range_V;
            let worst = RESOLUTION_PER_RANGE[0] * range_V;
            if !v.is_finite() || v < best * (1.0 - 1e-6) || v > worst * (1.0 + 1e-6) {
                return Err(ErrorCode::DataOutOfRange.into());
            }
            let i = RESOLUTION_PER_RANGE
                .iter()
                .position(|&f| f * range_V <= v * (1.0 + 1e-6))
                .unwrap_or(last);
            NPLC_VALUES[i]
        }
    })
}

/// A DC range parameter: a voltage (the smallest range that holds it),
/// `MIN|MAX|DEF`; `None` for `AUTO` when allowed.
fn range_param(tok: Token, auto_allowed: bool) -> Result<Option<f64>> {
    if let Token::CharacterProgramData(s) = tok
        && auto_allowed
        && mnemonic_compare(b"AUTO", s)
    {
        return Ok(None);
    }
    Ok(Some(match numeric_token(tok)? {
        Numeric::Min => RANGES_V[0],
        Numeric::Max => RANGES_V[RANGES_V.len() - 1],
        Numeric::Def => 10.0,
        Numeric::Value(v) if v.is_finite() => {
            range_for(v).ok_or(Error::new(ErrorCode::DataOutOfRange))?
        }
        Numeric::Value(_) => return Err(ErrorCode::DataOutOfRange.into()),
    }))
}

/// `[range[,resolution]]` of `CONF` and `MEAS?`: sets up DC volts.
fn configure(dmm: &mut Dmm, params: &mut Parameters) -> Result<()> {
    let range_V = match params.next_optional_token()? {
        None => None,
        Some(tok) => range_param(tok, true)?,
    };
    let nplc = match params.next_optional_token()? {
        None => 10.0,
        Some(tok) => nplc_for_resolution(numeric_token(tok)?, range_V.unwrap_or(10.0))?,
    };
    dmm.configure_dcv(range_V, nplc);
    Ok(())
}

/// `CONF:VOLT:DC [<range>|AUTO|MIN|MAX|DEF[,<resolution>|MIN|MAX|DEF]]`.
struct ConfVoltDcCommand;
impl Command<Session> for ConfVoltDcCommand {
    cmd_nquery!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        configure(&mut s.lock(), &mut params)
    }
}

/// `CONF?`: `"VOLT +1.00000000E+01,+1.00000000E-06"` (function, range,
/// resolution).
struct ConfQueryCommand;
impl Command<Session> for ConfQueryCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let dmm = s.lock();
        let range_V = dmm.range_in_use_V();
        let text = format!(
            "\"VOLT {},{}\"",
            format_setting(range_V),
            format_setting(dmm.cfg.resolution_V(range_V))
        );
        drop(dmm);
        reply(r, &text)
    }
}

/// `MEAS:VOLT:DC? [<range>[,<resolution>]]`: `CONF` then `READ?`.
struct MeasVoltDcCommand;
impl Command<Session> for MeasVoltDcCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        configure(&mut s.lock(), &mut params)?;
        read(s, r)
    }
}

/// `READ?`: `INIT`, wait for the acquisition, then the readings as `FETC?`.
/// Waiting for a bus trigger that cannot come while the query waits, or
/// for an endless trigger count, is -214 "Trigger deadlock" on the meter.
fn read(s: &mut Session, r: ResponseUnit) -> Result<()> {
    {
        let mut dmm = s.lock();
        if dmm.cfg.trig_source == TrigSource::Bus || dmm.cfg.trig_count.is_none() {
            return Err(ErrorCode::TriggerDeadlock.into());
        }
        dmm.initiate()?;
    }
    fetch(s, r)
}

/// Waits for the acquisition to end, then answers every reading in memory.
/// An acquisition aborted before its first reading leaves none: -230, as
/// for `FETC?` with nothing acquired.
fn fetch(s: &mut Session, r: ResponseUnit) -> Result<()> {
    s.wait_until(|_| false)?;
    let mut dmm = s.lock();
    let readings = dmm.all_readings();
    if readings.is_empty() {
        return Err(ErrorCode::DataCorruptOrStale.into());
    }
    let ascii = dmm.cfg.ascii;
    drop(dmm);
    reply_readings(r, ascii, &readings)
}

struct ReadCommand;
impl Command<Session> for ReadCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        read(s, r)
    }
}

/// `FETC?`: waits for the acquisition to end, then every reading in memory
/// (left there). With nothing acquired since `*RST`/`CONF` it is -230
/// "Data corrupt or stale".
struct FetchCommand;
impl Command<Session> for FetchCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        {
            let mut dmm = s.lock();
            dmm.update();
            if !dmm.is_busy() && !dmm.initiated {
                return Err(ErrorCode::DataCorruptOrStale.into());
            }
            if dmm.is_busy() && dmm.cfg.trig_count.is_none() {
                return Err(ErrorCode::TriggerDeadlock.into());
            }
        }
        fetch(s, r)
    }
}

/// `[SENS:]FUNC "VOLT"`, `FUNC?` -> `"VOLT"`. The emulated meter's input
/// is the photodetector's output, so DC volts is the one function it has:
/// any other is -224 and leaves the function as it was.
struct SensFunctionCommand;
impl Command<Session> for SensFunctionCommand {
    cmd_both!();
    fn event(&self, _: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let name = match params.next_token()? {
            Token::StringProgramData(s) | Token::CharacterProgramData(s) => s,
            _ => return Err(ErrorCode::DataTypeError.into()),
        };
        let name = name.to_ascii_uppercase();
        if matches!(
            name.as_slice(),
            b"VOLT" | b"VOLTAGE" | b"VOLT:DC" | b"VOLTAGE:DC"
        ) {
            Ok(())
        } else {
            Err(ErrorCode::IllegalParameterValue.into())
        }
    }
    fn query(
        &self,
        _: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        reply(r, "\"VOLT\"")
    }
}

/// `[SENS:]VOLT[:DC]:RANG <range>|AUTO|MIN|MAX|DEF`, `...:RANG? [MIN|MAX|DEF]`.
/// A fixed range turns autorange off.
struct SensRangeCommand;
impl Command<Session> for SensRangeCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let range_V = range_param(params.next_token()?, true)?;
        s.lock().cfg.range_V = range_V;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().range_in_use_V();
        let v = query_value(&mut params, now, RANGES_V[0], RANGES_V[4], 10.0)?;
        reply(r, &format_setting(v))
    }
}

/// `[SENS:]VOLT[:DC]:RANG:AUTO ON|OFF|ONCE`, query `1`/`0`. `OFF` keeps the
/// range autorange is on; `ONCE` ranges on the input now and stays there.
struct SensRangeAutoCommand;
impl Command<Session> for SensRangeAutoCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let sw = switch(&mut params, true)?;
        let mut dmm = s.lock();
        match sw {
            Switch::On => dmm.cfg.range_V = None,
            Switch::Off => dmm.cfg.range_V = Some(dmm.range_in_use_V()),
            Switch::Once => dmm.autorange_once(),
        }
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let auto = s.lock().cfg.range_V.is_none();
        reply_bool(r, auto)
    }
}

/// `[SENS:]VOLT[:DC]:APER <s>|MIN|MAX|DEF`: integration time in seconds,
/// 20 us to 1 s in 2 us steps; turns aperture mode on.
struct SensApertureCommand;
impl Command<Session> for SensApertureCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let v = numeric(
            &mut params,
            APERTURE_MIN_S,
            APERTURE_MAX_S,
            APERTURE_DEFAULT_S,
        )?;
        let stepped =
            ((v / APERTURE_STEP_S).round() * APERTURE_STEP_S).clamp(APERTURE_MIN_S, APERTURE_MAX_S);
        let mut dmm = s.lock();
        dmm.cfg.aperture_s = stepped;
        dmm.cfg.aperture_enabled = true;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().cfg.aperture_s;
        let v = query_value(
            &mut params,
            now,
            APERTURE_MIN_S,
            APERTURE_MAX_S,
            APERTURE_DEFAULT_S,
        )?;
        reply(r, &format_setting(v))
    }
}

/// `[SENS:]VOLT[:DC]:APER:ENAB ON|OFF`, query `1`/`0`.
struct SensApertureEnabledCommand;
impl Command<Session> for SensApertureEnabledCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let on = switch(&mut params, false)? == Switch::On;
        s.lock().cfg.aperture_enabled = on;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let on = s.lock().cfg.aperture_enabled;
        reply_bool(r, on)
    }
}

/// `[SENS:]VOLT[:DC]:NPLC <n>|MIN|MAX|DEF`: integration time in mains
/// cycles, one of 0.001 0.002 0.006 0.02 0.06 0.2 1 10 100 (-224 for a
/// value between them); turns aperture mode off.
struct SensNplcCommand;
impl Command<Session> for SensNplcCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let last = NPLC_VALUES.len() - 1;
        let v = numeric(&mut params, NPLC_VALUES[0], NPLC_VALUES[last], 10.0)?;
        let i = nplc_index(v).ok_or(Error::new(ErrorCode::IllegalParameterValue))?;
        let mut dmm = s.lock();
        dmm.cfg.nplc = NPLC_VALUES[i];
        dmm.cfg.aperture_enabled = false;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().cfg.nplc;
        let last = NPLC_VALUES.len() - 1;
        let v = query_value(&mut params, now, NPLC_VALUES[0], NPLC_VALUES[last], 10.0)?;
        reply(r, &format_setting(v))
    }
}

/// `[SENS:]VOLT[:DC]:RES <V>|MIN|MAX|DEF`: resolution on the present
/// range; picks the shortest integration time that gives it (and turns
/// aperture mode off). The query answers from the integration time in use.
struct SensResolutionCommand;
impl Command<Session> for SensResolutionCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let res = numeric_token(params.next_token()?)?;
        let mut dmm = s.lock();
        let nplc = nplc_for_resolution(res, dmm.range_in_use_V())?;
        dmm.cfg.nplc = nplc;
        dmm.cfg.aperture_enabled = false;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let dmm = s.lock();
        let range_V = dmm.range_in_use_V();
        let now = dmm.cfg.resolution_V(range_V);
        drop(dmm);
        let last = RESOLUTION_PER_RANGE.len() - 1;
        let v = query_value(
            &mut params,
            now,
            RESOLUTION_PER_RANGE[last] * range_V,
            RESOLUTION_PER_RANGE[0] * range_V,
            RESOLUTION_PER_RANGE[last - 1] * range_V,
        )?;
        reply(r, &format_setting(v))
    }
}

/// `[SENS:]VOLT[:DC]:ZERO:AUTO ON|OFF|ONCE`, query `1`/`0` (`ONCE` zeroes
/// once and leaves auto-zero off).
struct SensZeroAutoCommand;
impl Command<Session> for SensZeroAutoCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let on = switch(&mut params, true)? == Switch::On;
        s.lock().cfg.autozero = on;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let on = s.lock().cfg.autozero;
        reply_bool(r, on)
    }
}

/// `[SENS:]VOLT[:DC]:IMP:AUTO ON|OFF`, query `1`/`0`.
struct SensImpedanceAutoCommand;
impl Command<Session> for SensImpedanceAutoCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let on = switch(&mut params, false)? == Switch::On;
        s.lock().cfg.impedance_auto = on;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let on = s.lock().cfg.impedance_auto;
        reply_bool(r, on)
    }
}

/// `TRIG:SOUR IMM|EXT|BUS|INT`; refused with -221 "Settings conflict" while
/// an acquisition runs.
struct TrigSourceCommand;
impl Command<Session> for TrigSourceCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let source = match choice(
            &mut params,
            &[b"IMMediate", b"EXTernal", b"BUS", b"INTernal"],
        )? {
            0 => TrigSource::Immediate,
            1 => TrigSource::External,
            2 => TrigSource::Bus,
            _ => TrigSource::Internal,
        };
        let mut dmm = s.lock();
        dmm.update();
        if dmm.is_busy() {
            return Err(ErrorCode::SettingsConflict.into());
        }
        dmm.cfg.trig_source = source;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let name = match s.lock().cfg.trig_source {
            TrigSource::Immediate => "IMM",
            TrigSource::External => "EXT",
            TrigSource::Bus => "BUS",
            TrigSource::Internal => "INT",
        };
        reply(r, name)
    }
}

/// `TRIG:SLOP POS|NEG`: which edge of the external trigger input counts,
/// and which crossing of the level for `TRIG:SOUR INT`.
struct TrigSlopeCommand;
impl Command<Session> for TrigSlopeCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let rising = choice(&mut params, &[b"POSitive", b"NEGative"])? == 0;
        s.lock().cfg.trig_slope_rising = rising;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let rising = s.lock().cfg.trig_slope_rising;
        reply(r, if rising { "POS" } else { "NEG" })
    }
}

/// `TRIG:DEL <s>|MIN|MAX|DEF`: delay from the trigger to the first reading,
/// 0 to 3600 s in 1 us steps; turns the automatic delay off. The query
/// answers the delay in use (the automatic one while that is on).
struct TrigDelayCommand;
impl Command<Session> for TrigDelayCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let v = numeric(&mut params, 0.0, MAX_TIME_S, 0.0)?;
        let mut dmm = s.lock();
        dmm.cfg.trig_delay_s = (v * 1e6).round() / 1e6;
        dmm.cfg.trig_delay_auto = false;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().cfg.delay_s();
        let v = query_value(&mut params, now, 0.0, MAX_TIME_S, 0.0)?;
        reply(r, &format_setting(v))
    }
}

/// `TRIG:DEL:AUTO ON|OFF`, query `1`/`0`.
struct TrigDelayAutoCommand;
impl Command<Session> for TrigDelayAutoCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let on = switch(&mut params, false)? == Switch::On;
        let mut dmm = s.lock();
        if !on && dmm.cfg.trig_delay_auto {
            // Off keeps the delay the automatic setting was using.
            dmm.cfg.trig_delay_s = dmm.cfg.delay_s();
        }
        dmm.cfg.trig_delay_auto = on;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let on = s.lock().cfg.trig_delay_auto;
        reply_bool(r, on)
    }
}

/// `TRIG:COUN <n>|MIN|MAX|DEF|INF`: bursts per `INIT`, 1 to 1e9 or endless.
/// The query answers `+1.00000000E+00`, `+9.90000000E+37` for `INF`.
struct TrigCountCommand;
impl Command<Session> for TrigCountCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let count = match params.next_token()? {
            Token::CharacterProgramData(name) if mnemonic_compare(b"INFinity", name) => None,
            tok => match numeric_token(tok)? {
                Numeric::Min | Numeric::Def => Some(1),
                Numeric::Max => Some(MAX_TRIGGER_COUNT),
                Numeric::Value(v) if v >= OVERLOAD => None,
                Numeric::Value(v) if (1.0..=MAX_TRIGGER_COUNT as f64).contains(&v) => {
                    Some(v.round() as u64)
                }
                Numeric::Value(_) => return Err(ErrorCode::DataOutOfRange.into()),
            },
        };
        s.lock().cfg.trig_count = count;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().cfg.trig_count.map_or(OVERLOAD, |n| n as f64);
        let v = query_value(&mut params, now, 1.0, MAX_TRIGGER_COUNT as f64, 1.0)?;
        reply(r, &format_setting(v))
    }
}

/// `TRIG:LEV <V>|MIN|MAX|DEF`: level for `TRIG:SOUR INT`. On a fixed range
/// up to 100 V it must lie within +-120 % of the range.
struct TrigLevelCommand;
impl Command<Session> for TrigLevelCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let tok = params.next_token()?;
        let mut dmm = s.lock();
        let limit = level_limit_V(&dmm);
        let v = match numeric_token(tok)? {
            Numeric::Min => -limit,
            Numeric::Max => limit,
            Numeric::Def => 0.0,
            Numeric::Value(v) if v.is_finite() && v.abs() <= limit => v,
            Numeric::Value(_) => return Err(ErrorCode::DataOutOfRange.into()),
        };
        dmm.cfg.trig_level_V = v;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let dmm = s.lock();
        let (now, limit) = (dmm.cfg.trig_level_V, level_limit_V(&dmm));
        drop(dmm);
        let v = query_value(&mut params, now, -limit, limit, 0.0)?;
        reply(r, &format_setting(v))
    }
}

fn level_limit_V(dmm: &Dmm) -> f64 {
    match dmm.cfg.range_V {
        Some(r) if r <= 100.0 => r * 1.2,
        _ => MAX_LEVEL_V,
    }
}

/// `SAMP:SOUR IMM|TIM`: back-to-back readings or a fixed sample period.
struct SampSourceCommand;
impl Command<Session> for SampSourceCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let timer = choice(&mut params, &[b"IMMediate", b"TIMer"])? == 1;
        s.lock().cfg.sample_timer = timer;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let timer = s.lock().cfg.sample_timer;
        reply(r, if timer { "TIM" } else { "IMM" })
    }
}

/// `SAMP:TIM <s>|MIN|MAX|DEF`: sample period on the meter's timebase,
/// 20 us to 3600 s in 1 us steps; `MIN` is the recommended minimum for the
/// present integration time, auto-zero and autorange.
struct SampTimerCommand;
impl Command<Session> for SampTimerCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let tok = params.next_token()?;
        let mut dmm = s.lock();
        let v = match numeric_token(tok)? {
            Numeric::Min => dmm.cfg.min_interval_s(),
            Numeric::Max => SAMPLE_TIMER_MAX_S,
            Numeric::Def => 1.0,
            Numeric::Value(v)
                if v.is_finite() && (SAMPLE_TIMER_MIN_S..=SAMPLE_TIMER_MAX_S).contains(&v) =>
            {
                v
            }
            Numeric::Value(_) => return Err(ErrorCode::DataOutOfRange.into()),
        };
        // On the timer's grid (steps per second, an exact integer, so the
        // division gives the nearest double of a whole number of steps).
        let steps_per_s = SAMPLE_TIMER_STEP_S.recip().round();
        dmm.cfg.samp_tim_s = ((v * steps_per_s).round() / steps_per_s).max(SAMPLE_TIMER_MIN_S);
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let dmm = s.lock();
        let (now, min) = (dmm.cfg.samp_tim_s, dmm.cfg.min_interval_s());
        drop(dmm);
        let v = query_value(&mut params, now, min, SAMPLE_TIMER_MAX_S, 1.0)?;
        reply(r, &format_setting(v))
    }
}

/// `SAMP:COUN <n>|MIN|MAX|DEF`: readings per trigger, 1..1 000 000; query
/// `+5`.
struct SampCountCommand;
impl Command<Session> for SampCountCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let n = numeric(&mut params, 1.0, MAX_SAMPLE_COUNT as f64, 1.0)?;
        s.lock().cfg.samp_count = n.round() as u64;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let now = s.lock().cfg.samp_count as f64;
        let v = query_value(&mut params, now, 1.0, MAX_SAMPLE_COUNT as f64, 1.0)?;
        reply(r, &format!("{:+}", v as u64))
    }
}

/// `SAMP:COUN:PRET <n>|MIN|MAX|DEF`: how many of the `SAMP:COUN` readings
/// the meter keeps from before the trigger (it digitizes while it waits;
/// fewer when the trigger comes sooner). At most `SAMP:COUN` - 1 and
/// 49 999 (no MEM option); query `+0`.
struct SampPretriggerCommand;
impl Command<Session> for SampPretriggerCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let max = pretrigger_max(&s.lock());
        let n = numeric(&mut params, 0.0, max, 0.0)?;
        s.lock().cfg.pretrigger = n.round() as u64;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let dmm = s.lock();
        let (now, max) = (dmm.cfg.pretrigger as f64, pretrigger_max(&dmm));
        drop(dmm);
        let v = query_value(&mut params, now, 0.0, max, 0.0)?;
        reply(r, &format!("{:+}", v as u64))
    }
}

fn pretrigger_max(dmm: &Dmm) -> f64 {
    dmm.cfg.samp_count.saturating_sub(1).min(MAX_PRETRIGGER) as f64
}

/// `FORM[:DATA] ASC[,<digits>]|REAL[,64]`.
struct FormDataCommand;
impl Command<Session> for FormDataCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let ascii = choice(&mut params, &[b"ASCii", b"REAL"])? == 0;
        if let Some(tok) = params.next_optional_token()? {
            let width = f64::try_from(tok)?;
            if !ascii && width != 64.0 {
                return Err(ErrorCode::IllegalParameterValue.into());
            }
        }
        s.lock().cfg.ascii = ascii;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let ascii = s.lock().cfg.ascii;
        reply(r, if ascii { "ASC,+9" } else { "REAL,+64" })
    }
}

/// `INIT`: clear memory, wait for the trigger.
struct InitCommand;
impl Command<Session> for InitCommand {
    cmd_nquery!();
    fn event(&self, s: &mut Session, _: &mut Context, _: Parameters) -> Result<()> {
        s.lock().initiate()
    }
}

/// `ABOR`: stop the acquisition, keep the readings.
struct AbortCommand;
impl Command<Session> for AbortCommand {
    cmd_nquery!();
    fn event(&self, s: &mut Session, _: &mut Context, _: Parameters) -> Result<()> {
        s.lock().abort();
        Ok(())
    }
}

/// `*TRG`: bus trigger.
struct TrgCommand;
impl Command<Session> for TrgCommand {
    cmd_nquery!();
    fn event(&self, s: &mut Session, _: &mut Context, _: Parameters) -> Result<()> {
        s.lock().bus_trigger()
    }
}

/// `STAT:QUES?` (`[:EVENt]?`, `latched`): the Questionable Data events as
/// a decimal, cleared by the reading; `STAT:QUES:COND?`: the condition
/// register, unlatched. Bit 14 (16384): reading memory overflowed, the
/// oldest readings lost.
struct StatQuesCommand {
    latched: bool,
}
impl Command<Session> for StatQuesCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let mut dmm = s.lock();
        dmm.update();
        let bits = if self.latched {
            std::mem::take(&mut dmm.ques_event)
        } else {
            dmm.ques_condition
        };
        drop(dmm);
        reply(r, &format!("{bits:+}"))
    }
}

/// `*OPT?`: the installed options.
struct OptCommand;
impl Command<Session> for OptCommand {
    cmd_qonly!();
    fn query(
        &self,
        _: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        reply(r, OPTIONS)
    }
}

/// `SYST:LIC:CAT?`: the licensed options, quoted.
struct SystLicenseCommand;
impl Command<Session> for SystLicenseCommand {
    cmd_qonly!();
    fn query(
        &self,
        _: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        reply(r, &format!("\"{OPTIONS}\""))
    }
}

/// `SYST:LFR?`: the mains frequency NPLC refers to, `+50`.
struct SystLfrCommand;
impl Command<Session> for SystLfrCommand {
    cmd_qonly!();
    fn query(
        &self,
        _: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        reply(r, &format!("{:+}", MAINS_HZ as u32))
    }
}

/// `SYST:VERS?`: the SCPI version the meter follows.
struct SystVersionCommand;
impl Command<Session> for SystVersionCommand {
    cmd_qonly!();
    fn query(
        &self,
        _: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        reply(r, "1999.0")
    }
}

/// `DATA:POIN?`: readings in memory, `+123`.
struct DataPointsCommand;
impl Command<Session> for DataPointsCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let n = s.lock().points();
        reply(r, &format!("{n:+}"))
    }
}

/// `DATA:LAST?`: the newest reading with its unit, `+1.23...E-01 VDC`
/// (`+9.91E+37 VDC`, the meter's not-a-number, when memory is empty).
struct DataLastCommand;
impl Command<Session> for DataLastCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let v = s.lock().last_reading().unwrap_or(9.91e37);
        reply(r, &format!("{} VDC", format_number(v)))
    }
}

/// `DATA:REM? <n>[,WAIT]`: removes and returns the `n` oldest readings in
/// the `FORM` format. Without `WAIT`, fewer than `n` in memory is -222;
/// with it the query waits for them (or for the acquisition to end).
struct DataRemoveCommand;
impl Command<Session> for DataRemoveCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        mut params: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let n = numeric(&mut params, 1.0, super::MEMORY_READINGS as f64, 1.0)?.round() as usize;
        let wait = match params.next_optional_token()? {
            None => false,
            Some(Token::CharacterProgramData(w)) if mnemonic_compare(b"WAIT", w) => true,
            Some(_) => return Err(ErrorCode::IllegalParameterValue.into()),
        };
        if wait {
            s.wait_until(|dmm| dmm.points() >= n)?;
        }
        let mut dmm = s.lock();
        if dmm.points() < n {
            return Err(ErrorCode::DataOutOfRange.into());
        }
        let readings = dmm.take_readings(Some(n));
        let ascii = dmm.cfg.ascii;
        drop(dmm);
        reply_readings(r, ascii, &readings)
    }
}

/// `R? [<max>]`: remove and return readings as a definite-length block
/// (ASCII or REAL,64 payload).
struct RQueryCommand;
impl Command<Session> for RQueryCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
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
        let mut dmm = s.lock();
        let readings = dmm.take_readings(max);
        let ascii = dmm.cfg.ascii;
        drop(dmm);
        let payload: Vec<u8> = if ascii {
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
impl Command<Session> for SystErrNextCommand {
    cmd_qonly!();
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let err = s
            .lock()
            .pop_error()
            .unwrap_or(Error::new(ErrorCode::NoError));
        let message = String::from_utf8_lossy(err.get_message());
        reply(r, &format!("{:+},\"{message}\"", err.get_code()))
    }
}

/// `DISP[:STAT] ON|OFF`, query `1`/`0`.
struct DispStateCommand;
impl Command<Session> for DispStateCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let on = switch(&mut params, false)? == Switch::On;
        s.lock().display_on = on;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        r: ResponseUnit,
    ) -> Result<()> {
        let on = s.lock().display_on;
        reply_bool(r, on)
    }
}

/// `DISP:TEXT "<text>"` (up to 40 characters, else -223 "Too much data"),
/// `DISP:TEXT?` -> the quoted text.
struct DispTextCommand;
impl Command<Session> for DispTextCommand {
    cmd_both!();
    fn event(&self, s: &mut Session, _: &mut Context, mut params: Parameters) -> Result<()> {
        let raw = match params.next_token()? {
            Token::StringProgramData(raw) => raw,
            _ => return Err(ErrorCode::DataTypeError.into()),
        };
        // The token keeps a quote written twice inside the string as two.
        let text = String::from_utf8_lossy(raw)
            .replace("\"\"", "\"")
            .replace("''", "'");
        if text.chars().count() > DISPLAY_TEXT_MAX {
            return Err(ErrorCode::TooMuchData.into());
        }
        s.lock().display_text = text;
        Ok(())
    }
    fn query(
        &self,
        s: &mut Session,
        _: &mut Context,
        _: Parameters,
        mut r: ResponseUnit,
    ) -> Result<()> {
        let text = s.lock().display_text.clone();
        r.data(text.as_bytes()).finish()
    }
}

/// `DISP:TEXT:CLE`: back to the normal display.
struct DispTextClearCommand;
impl Command<Session> for DispTextClearCommand {
    cmd_nquery!();
    fn event(&self, s: &mut Session, _: &mut Context, _: Parameters) -> Result<()> {
        s.lock().display_text.clear();
        Ok(())
    }
}
