//! The search space: named parameters, each continuous, integer or
//! categorical, and the unit-cube encoding the Bayesian strategy models.
//!
//! ```json
//! {"lr":      {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
//!  "depth":   {"type": "integer", "min": 2, "max": 8},
//!  "booster": {"type": "categorical", "values": ["gbtree", "dart"]}}
//! ```
//!
//! **Encoding.** A continuous parameter is one coordinate in [0, 1]: linear
//! between `min` and `max`, or linear in `ln` between `ln min` and `ln max`
//! with `"scale": "log"`. An integer parameter is one coordinate too, over
//! `[min − ½, max + ½]` (in `ln` for log scale), so that every whole number
//! owns an equal share of the interval and decoding rounds. A categorical
//! parameter is one-hot: one coordinate per value. Parameters come in name
//! order.

use serde_json::{Map, Value};

use crate::rng::Rng;
use crate::spec::SpecError;

/// Most parameters in one search (SageMaker's limit).
pub const MAX_PARAMS: usize = 30;
/// Most values of one categorical parameter (SageMaker's limit).
pub const MAX_VALUES: usize = 30;
/// Integers are kept within what a JSON number holds exactly.
const MAX_WHOLE: f64 = 9_007_199_254_740_992.0; // 2^53

/// How a numeric range is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// What one parameter may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Continuous {
        min: f64,
        max: f64,
        scale: Scale,
    },
    Integer {
        min: i64,
        max: i64,
        scale: Scale,
    },
    /// The values as given (strings, numbers or booleans).
    Categorical {
        values: Vec<Value>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub domain: Domain,
}

/// One parameter's value in a point of the space.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Float(f64),
    Int(i64),
    /// The index of a categorical value.
    Choice(usize),
}

/// The parameters, in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    params: Vec<Param>,
}

fn field(f: impl Into<String>, m: impl Into<String>) -> SpecError {
    SpecError::Field {
        field: f.into(),
        message: m.into(),
    }
}

/// Whether a name can be a hyperparameter (what a training job accepts).
pub fn check_param_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 || name.contains('\0') {
        return Err(format!(
            "parameter name '{name}' must be 1–256 characters without NUL"
        ));
    }
    Ok(())
}

impl Space {
    pub fn new(params: Vec<Param>) -> Space {
        let mut params = params;
        params.sort_by(|a, b| a.name.cmp(&b.name));
        Space { params }
    }

    /// Parse the spec's `parameters` object.
    pub fn parse(v: &Value) -> Result<Space, SpecError> {
        let obj = v.as_object().ok_or_else(|| {
            field(
                "parameters",
                "give an object of parameters to search, e.g. {\"lr\": {\"type\": \"continuous\", \"min\": 0.001, \"max\": 1, \"scale\": \"log\"}}",
            )
        })?;
        if obj.is_empty() {
            return Err(field("parameters", "name at least one parameter to search"));
        }
        if obj.len() > MAX_PARAMS {
            return Err(field(
                "parameters",
                format!("at most {MAX_PARAMS} parameters, not {}", obj.len()),
            ));
        }
        let mut params = Vec::with_capacity(obj.len());
        for (name, p) in obj {
            check_param_name(name).map_err(|m| field("parameters", m))?;
            params.push(Param {
                name: name.clone(),
                domain: parse_domain(name, p)?,
            });
        }
        Ok(Space::new(params))
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Coordinates of the encoding.
    pub fn dims(&self) -> usize {
        self.params
            .iter()
            .map(|p| match &p.domain {
                Domain::Categorical { values } => values.len(),
                _ => 1,
            })
            .sum()
    }

    /// A point drawn uniformly (log-uniformly on log scales).
    pub fn sample(&self, rng: &mut Rng) -> Vec<ParamValue> {
        self.params
            .iter()
            .map(|p| match &p.domain {
                Domain::Categorical { values } => ParamValue::Choice(rng.below(values.len())),
                _ => from_unit(&p.domain, rng.uniform()),
            })
            .collect()
    }

    /// The point as coordinates in the unit cube (see the module docs).
    pub fn encode(&self, point: &[ParamValue]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.dims());
        for (p, v) in self.params.iter().zip(point) {
            match &p.domain {
                Domain::Categorical { values } => {
                    let k = match v {
                        ParamValue::Choice(k) => *k,
                        _ => usize::MAX,
                    };
                    out.extend((0..values.len()).map(|i| if i == k { 1.0 } else { 0.0 }));
                }
                d => out.push(unit(d, v)),
            }
        }
        out
    }

    /// Coordinates back to a point: numbers clamped into range (integers
    /// rounded), categoricals the largest coordinate.
    pub fn decode(&self, x: &[f64]) -> Vec<ParamValue> {
        let mut at = 0;
        let mut out = Vec::with_capacity(self.params.len());
        for p in &self.params {
            match &p.domain {
                Domain::Categorical { values } => {
                    let n = values.len();
                    let slice = x.get(at..at + n).unwrap_or(&[]);
                    let best = slice
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f64::NEG_INFINITY),
                            |b, (i, &v)| {
                                if v > b.1 { (i, v) } else { b }
                            },
                        )
                        .0;
                    out.push(ParamValue::Choice(best));
                    at += n;
                }
                d => {
                    out.push(from_unit(d, x.get(at).copied().unwrap_or(0.5)));
                    at += 1;
                }
            }
        }
        out
    }

    /// A point near `point`: numeric coordinates moved by a normal step of
    /// `sd` (in unit-cube terms), each categorical redrawn with probability
    /// `p_switch`.
    pub fn perturb(
        &self,
        point: &[ParamValue],
        sd: f64,
        p_switch: f64,
        rng: &mut Rng,
    ) -> Vec<ParamValue> {
        self.params
            .iter()
            .zip(point)
            .map(|(p, v)| match &p.domain {
                Domain::Categorical { values } => {
                    if rng.uniform() < p_switch {
                        ParamValue::Choice(rng.below(values.len()))
                    } else {
                        v.clone()
                    }
                }
                d => {
                    let u = (unit(d, v) + sd * rng.normal()).clamp(0.0, 1.0);
                    from_unit(d, u)
                }
            })
            .collect()
    }

    /// The point as JSON: numbers as numbers, categoricals as given.
    pub fn to_json(&self, point: &[ParamValue]) -> Map<String, Value> {
        self.params
            .iter()
            .zip(point)
            .map(|(p, v)| (p.name.clone(), value_json(&p.domain, v)))
            .collect()
    }

    /// [`Space::to_json`] read back (a resumed job's trials).
    pub fn from_json(&self, m: &Map<String, Value>) -> Option<Vec<ParamValue>> {
        self.params
            .iter()
            .map(|p| {
                let v = m.get(&p.name)?;
                match &p.domain {
                    Domain::Continuous { .. } => v.as_f64().map(ParamValue::Float),
                    Domain::Integer { .. } => v.as_i64().map(ParamValue::Int),
                    Domain::Categorical { values } => {
                        values.iter().position(|c| c == v).map(ParamValue::Choice)
                    }
                }
            })
            .collect()
    }

    /// The point as a training job's hyperparameters (strings).
    pub fn hyperparameters(&self, point: &[ParamValue]) -> Vec<(String, String)> {
        self.params
            .iter()
            .zip(point)
            .map(|(p, v)| {
                let s = match value_json(&p.domain, v) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (p.name.clone(), s)
            })
            .collect()
    }
}

fn value_json(d: &Domain, v: &ParamValue) -> Value {
    match (d, v) {
        (Domain::Categorical { values }, ParamValue::Choice(k)) => {
            values.get(*k).cloned().unwrap_or(Value::Null)
        }
        (_, ParamValue::Float(x)) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        (_, ParamValue::Int(i)) => Value::from(*i),
        (_, ParamValue::Choice(k)) => Value::from(*k),
    }
}

/// The interval a numeric domain is encoded over (in `ln` for log scale).
fn bounds(d: &Domain) -> (f64, f64, Scale) {
    match *d {
        Domain::Continuous { min, max, scale } => match scale {
            Scale::Linear => (min, max, scale),
            Scale::Log => (min.ln(), max.ln(), scale),
        },
        Domain::Integer { min, max, scale } => {
            let (lo, hi) = (min as f64 - 0.5, max as f64 + 0.5);
            match scale {
                Scale::Linear => (lo, hi, scale),
                Scale::Log => (lo.ln(), hi.ln(), scale),
            }
        }
        Domain::Categorical { .. } => (0.0, 1.0, Scale::Linear),
    }
}

/// A numeric value's coordinate in [0, 1].
fn unit(d: &Domain, v: &ParamValue) -> f64 {
    let (lo, hi, scale) = bounds(d);
    let x = match *v {
        ParamValue::Float(x) => x,
        ParamValue::Int(i) => i as f64,
        ParamValue::Choice(k) => k as f64,
    };
    let t = match scale {
        Scale::Linear => x,
        Scale::Log => x.max(f64::MIN_POSITIVE).ln(),
    };
    if hi > lo {
        ((t - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    }
}

/// Round to 6 significant digits (what people read and type).
fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = x.abs().log10().floor() as i32;
    let f = 10f64.powi(5 - mag);
    if !f.is_finite() || f == 0.0 {
        return x;
    }
    let r = (x * f).round() / f;
    if r.is_finite() { r } else { x }
}

/// A coordinate in [0, 1] to a numeric value of the domain.
fn from_unit(d: &Domain, u: f64) -> ParamValue {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (lo, hi, scale) = bounds(d);
    let t = lo + u * (hi - lo);
    let x = match scale {
        Scale::Linear => t,
        Scale::Log => t.exp(),
    };
    match *d {
        Domain::Continuous { min, max, .. } => ParamValue::Float(tidy(x).clamp(min, max)),
        Domain::Integer { min, max, .. } => ParamValue::Int((x.round() as i64).clamp(min, max)),
        Domain::Categorical { ref values } => {
            ParamValue::Choice(((u * values.len() as f64) as usize).min(values.len() - 1))
        }
    }
}

fn parse_domain(name: &str, p: &Value) -> Result<Domain, SpecError> {
    let at = |k: &str| format!("parameters.{name}.{k}");
    let obj = p.as_object().ok_or_else(|| {
        field(
            format!("parameters.{name}"),
            "give an object with \"type\" (continuous, integer or categorical) and its range or values",
        )
    })?;
    let ty = obj.get("type").and_then(Value::as_str).ok_or_else(|| {
        field(
            at("type"),
            "give the parameter's type: continuous, integer or categorical",
        )
    })?;
    let allowed: &[&str] = match ty {
        "continuous" | "integer" => &["type", "min", "max", "scale"],
        "categorical" => &["type", "values"],
        other => {
            return Err(field(
                at("type"),
                format!("unknown type '{other}': use continuous, integer or categorical"),
            ));
        }
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(field(
            at(k),
            format!(
                "a {ty} parameter has no '{k}'; it has: {}",
                allowed.join(", ")
            ),
        ));
    }
    if ty == "categorical" {
        let values = obj.get("values").and_then(Value::as_array).ok_or_else(|| {
            field(
                at("values"),
                "give the values to choose from, e.g. [\"gbtree\", \"dart\"]",
            )
        })?;
        if values.is_empty() {
            return Err(field(at("values"), "give at least one value"));
        }
        if values.len() > MAX_VALUES {
            return Err(field(
                at("values"),
                format!("at most {MAX_VALUES} values, not {}", values.len()),
            ));
        }
        for (i, v) in values.iter().enumerate() {
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(field(
                    format!("parameters.{name}.values[{i}]"),
                    format!("{v} is not a string, number or boolean"),
                ));
            }
            if values[..i].contains(v) {
                return Err(field(
                    format!("parameters.{name}.values[{i}]"),
                    format!("{v} is listed twice"),
                ));
            }
        }
        return Ok(Domain::Categorical {
            values: values.clone(),
        });
    }
    let num = |k: &str| -> Result<f64, SpecError> {
        match obj.get(k) {
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| field(at(k), format!("{v} is not a finite number"))),
            None => Err(field(at(k), format!("give the {ty} parameter's '{k}'"))),
        }
    };
    let (min, max) = (num("min")?, num("max")?);
    if min >= max {
        return Err(field(
            at("min"),
            format!(
                "'min' ({min}) must be below 'max' ({max}); a fixed value belongs in training.hyperparameters"
            ),
        ));
    }
    let scale = match obj.get("scale") {
        None => Scale::Linear,
        Some(v) => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("linear") => Scale::Linear,
            Some("log") | Some("logarithmic") => Scale::Log,
            _ => {
                return Err(field(
                    at("scale"),
                    format!("{v} is not a scale: use \"linear\" (the default) or \"log\""),
                ));
            }
        },
    };
    if scale == Scale::Log && min <= 0.0 {
        return Err(field(
            at("min"),
            format!("a log scale needs 'min' above 0, not {min}"),
        ));
    }
    if ty == "integer" {
        for (k, x) in [("min", min), ("max", max)] {
            if x.fract() != 0.0 || x.abs() > MAX_WHOLE {
                return Err(field(
                    at(k),
                    format!("an integer parameter's '{k}' must be a whole number, not {x}"),
                ));
            }
        }
        return Ok(Domain::Integer {
            min: min as i64,
            max: max as i64,
            scale,
        });
    }
    Ok(Domain::Continuous { min, max, scale })
}

/// The CLI's `--param NAME=SPEC`: `uniform:A:B`, `log-uniform:A:B`,
/// `int:A:B`, `log-int:A:B` or `choice:V1,V2,…`; returns the name and the
/// parameter's JSON, checked.
pub fn parse_cli_param(s: &str) -> Result<(String, Value), SpecError> {
    let bad = |m: String| field("--param", m);
    let (name, rest) = s.split_once('=').ok_or_else(|| {
        bad(format!(
            "'{s}': write NAME=SPEC, e.g. lr=log-uniform:1e-3:1, depth=int:2:8 or booster=choice:gbtree,dart"
        ))
    })?;
    let name = name.trim();
    check_param_name(name).map_err(bad)?;
    let (kind, args) = rest.split_once(':').ok_or_else(|| {
        bad(format!(
            "'{s}': the spec is KIND:…, with KIND uniform, log-uniform, int, log-int or choice"
        ))
    })?;
    let range = |args: &str| -> Result<(f64, f64), SpecError> {
        let (a, b) = args
            .split_once(':')
            .ok_or_else(|| bad(format!("'{s}': give the range as {kind}:MIN:MAX")))?;
        let p = |x: &str| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("'{s}': '{x}' is not a number")))
        };
        Ok((p(a)?, p(b)?))
    };
    let v = match kind.trim() {
        "uniform" | "log-uniform" | "int" | "log-int" => {
            let (min, max) = range(args)?;
            let ty = if kind.ends_with("int") {
                "integer"
            } else {
                "continuous"
            };
            let scale = if kind.starts_with("log-") {
                "log"
            } else {
                "linear"
            };
            let num = |x: f64| {
                if ty == "integer" && x.fract() == 0.0 && x.abs() <= MAX_WHOLE {
                    Value::from(x as i64)
                } else {
                    serde_json::Number::from_f64(x)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                }
            };
            serde_json::json!({"type": ty, "min": num(min), "max": num(max), "scale": scale})
        }
        "choice" => {
            let values: Vec<Value> = args
                .split(',')
                .map(|v| Value::String(v.trim().to_string()))
                .collect();
            serde_json::json!({"type": "categorical", "values": values})
        }
        other => {
            return Err(bad(format!(
                "'{s}': unknown kind '{other}'; use uniform, log-uniform, int, log-int or choice"
            )));
        }
    };
    parse_domain(name, &v).map_err(|e| bad(format!("'{s}': {e}")))?;
    Ok((name.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn space() -> Space {
        Space::parse(&json!({
            "lr": {"type": "continuous", "min": 0.001, "max": 1, "scale": "log"},
            "depth": {"type": "integer", "min": 2, "max": 8},
            "booster": {"type": "categorical", "values": ["gbtree", "dart", 3]},
            "frac": {"type": "continuous", "min": -1, "max": 1}
        }))
        .unwrap()
    }

    #[test]
    fn parameters_parse_in_name_order() {
        let s = space();
        let names: Vec<&str> = s.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["booster", "depth", "frac", "lr"]);
        assert_eq!(s.dims(), 3 + 1 + 1 + 1);
        assert_eq!(
            s.params()[1].domain,
            Domain::Integer {
                min: 2,
                max: 8,
                scale: Scale::Linear
            }
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = |v: Value| Space::parse(&v).unwrap_err().to_string();
        let cases = [
            (json!([]), "'parameters'"),
            (json!({}), "at least one"),
            (json!({"a": 1}), "'parameters.a'"),
            (json!({"a": {"min": 1}}), "'parameters.a.type'"),
            (
                json!({"a": {"type": "gaussian"}}),
                "unknown type 'gaussian'",
            ),
            (
                json!({"a": {"type": "continuous", "min": 2, "max": 1}}),
                "'parameters.a.min': 'min' (2) must be below 'max' (1)",
            ),
            (
                json!({"a": {"type": "continuous", "min": 1, "max": 1}}),
                "must be below",
            ),
            (
                json!({"a": {"type": "continuous", "max": 1}}),
                "'parameters.a.min'",
            ),
            (
                json!({"a": {"type": "continuous", "min": "x", "max": 1}}),
                "not a finite number",
            ),
            (
                json!({"a": {"type": "continuous", "min": 0, "max": 1, "scale": "log"}}),
                "log scale needs 'min' above 0",
            ),
            (
                json!({"a": {"type": "continuous", "min": 0, "max": 1, "scale": "cubic"}}),
                "'parameters.a.scale'",
            ),
            (
                json!({"a": {"type": "integer", "min": 1.5, "max": 4}}),
                "'parameters.a.min': an integer parameter's 'min' must be a whole number",
            ),
            (
                json!({"a": {"type": "integer", "min": 1, "max": 4.2}}),
                "'parameters.a.max'",
            ),
            (
                json!({"a": {"type": "categorical", "values": []}}),
                "'parameters.a.values': give at least one value",
            ),
            (
                json!({"a": {"type": "categorical", "values": ["x", "x"]}}),
                "'parameters.a.values[1]'",
            ),
            (
                json!({"a": {"type": "categorical", "values": [{"x": 1}]}}),
                "not a string, number or boolean",
            ),
            (
                json!({"a": {"type": "categorical", "values": ["x"], "min": 1}}),
                "'parameters.a.min': a categorical parameter has no 'min'",
            ),
            (
                json!({"": {"type": "categorical", "values": ["x"]}}),
                "1–256",
            ),
        ];
        for (v, want) in cases {
            let e = err(v.clone());
            assert!(e.contains(want), "{v}: {e} (wanted {want})");
        }
    }

    #[test]
    fn encoding_round_trips_with_log_scales_integers_and_one_hot() {
        let s = space();
        let p = vec![
            ParamValue::Choice(1),
            ParamValue::Int(5),
            ParamValue::Float(0.0),
            ParamValue::Float(0.0316228),
        ];
        let x = s.encode(&p);
        assert_eq!(&x[..3], &[0.0, 1.0, 0.0]);
        // depth 5 is the middle of [1.5, 8.5]
        assert!((x[3] - 0.5).abs() < 1e-12, "{x:?}");
        assert!((x[4] - 0.5).abs() < 1e-12);
        // sqrt(0.001 * 1) is the middle in log space
        assert!((x[5] - 0.5).abs() < 1e-6, "{x:?}");
        assert_eq!(s.decode(&x), p);
        // the ends
        let lo = s.decode(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            lo,
            vec![
                ParamValue::Choice(0),
                ParamValue::Int(2),
                ParamValue::Float(-1.0),
                ParamValue::Float(0.001)
            ]
        );
        let hi = s.decode(&[0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(hi[0], ParamValue::Choice(2));
        assert_eq!(hi[1], ParamValue::Int(8));
        assert_eq!(hi[3], ParamValue::Float(1.0));
        // every integer owns an equal share of the unit interval
        let mut counts = [0usize; 7];
        for i in 0..7000 {
            let u = (i as f64 + 0.5) / 7000.0;
            if let ParamValue::Int(d) = s.decode(&[1.0, 0.0, 0.0, u, 0.0, 0.0])[1] {
                counts[(d - 2) as usize] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c == 1000), "{counts:?}");
        // JSON and hyperparameter strings
        let j = s.to_json(&p);
        assert_eq!(j["booster"], json!("dart"));
        assert_eq!(j["depth"], json!(5));
        assert_eq!(s.from_json(&j), Some(p.clone()));
        let hp = s.hyperparameters(&p);
        assert_eq!(hp[0], ("booster".into(), "dart".into()));
        assert_eq!(hp[1], ("depth".into(), "5".into()));
        assert_eq!(hp[3], ("lr".into(), "0.0316228".into()));
        let three = s.hyperparameters(&[
            ParamValue::Choice(2),
            ParamValue::Int(2),
            ParamValue::Float(0.5),
            ParamValue::Float(0.1),
        ]);
        assert_eq!(three[0].1, "3");
    }

    #[test]
    fn log_scale_integers_and_sampling_stay_in_range() {
        let s = Space::parse(&json!({
            "n": {"type": "integer", "min": 1, "max": 1000, "scale": "log"},
            "lr": {"type": "continuous", "min": 1e-5, "max": 1e-1, "scale": "log"}
        }))
        .unwrap();
        let mut rng = Rng::new(3);
        let mut small = 0;
        let mut low_lr = 0;
        for _ in 0..2000 {
            let p = s.sample(&mut rng);
            let (ParamValue::Float(lr), ParamValue::Int(n)) = (&p[0], &p[1]) else {
                panic!("{p:?}")
            };
            assert!((1e-5..=1e-1).contains(lr) && (1..=1000).contains(n));
            small += usize::from(*n <= 31);
            low_lr += usize::from(*lr < 1e-3);
            // integers round-trip
            assert_eq!(s.decode(&s.encode(&p))[1], p[1]);
        }
        // log-uniform: half the draws in the lower half of the decades
        assert!((800..1200).contains(&small), "{small}");
        assert!((800..1200).contains(&low_lr), "{low_lr}");
    }

    #[test]
    fn cli_params() {
        let (n, v) = parse_cli_param("lr=log-uniform:1e-3:1").unwrap();
        assert_eq!(n, "lr");
        assert_eq!(
            v,
            json!({"type": "continuous", "min": 0.001, "max": 1.0, "scale": "log"})
        );
        let (_, v) = parse_cli_param("depth=int:2:8").unwrap();
        assert_eq!(
            v,
            json!({"type": "integer", "min": 2, "max": 8, "scale": "linear"})
        );
        let (_, v) = parse_cli_param("booster=choice:gbtree,dart").unwrap();
        assert_eq!(
            v,
            json!({"type": "categorical", "values": ["gbtree", "dart"]})
        );
        for (bad, want) in [
            ("lr", "NAME=SPEC"),
            ("lr=0.1", "KIND"),
            ("lr=normal:0:1", "unknown kind 'normal'"),
            ("lr=uniform:1", "MIN:MAX"),
            ("lr=uniform:a:1", "'a' is not a number"),
            ("lr=log-uniform:0:1", "log scale"),
            ("d=int:1.5:3", "whole number"),
        ] {
            let e = parse_cli_param(bad).unwrap_err().to_string();
            assert!(e.contains("--param") && e.contains(want), "{bad}: {e}");
        }
    }
}
