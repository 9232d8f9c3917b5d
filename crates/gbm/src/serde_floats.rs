//! Serde for float vectors that may hold ±inf or NaN (split thresholds on
//! the last bin, losses): JSON has no such numbers, so they travel as the
//! strings "inf", "-inf" and "nan"; finite values stay numbers.

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for &x in v {
        if x.is_finite() {
            seq.serialize_element(&x)?;
        } else if x.is_nan() {
            seq.serialize_element("nan")?;
        } else if x > 0.0 {
            seq.serialize_element("inf")?;
        } else {
            seq.serialize_element("-inf")?;
        }
    }
    seq.end()
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Num {
    F(f64),
    S(String),
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of numbers or \"inf\"/\"-inf\"/\"nan\"")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Vec<f64>, A::Error> {
            let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
            while let Some(n) = a.next_element::<Num>()? {
                out.push(match n {
                    Num::F(x) => x,
                    Num::S(s) => match s.as_str() {
                        "inf" => f64::INFINITY,
                        "-inf" => f64::NEG_INFINITY,
                        "nan" => f64::NAN,
                        other => return Err(de::Error::custom(format!("not a number: {other:?}"))),
                    },
                });
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct W(#[serde(with = "super")] Vec<f64>);

    #[test]
    fn non_finite_values_survive_json() {
        let json = serde_json::to_string(&W(vec![
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -0.25,
        ]))
        .unwrap();
        assert_eq!(json, r#"[1.5,"inf","-inf","nan",-0.25]"#);
        let back: W = serde_json::from_str(&json).unwrap();
        assert_eq!(&back.0[..3], &[1.5, f64::INFINITY, f64::NEG_INFINITY]);
        assert!(back.0[3].is_nan() && back.0[4] == -0.25);
        assert!(serde_json::from_str::<W>(r#"["huge"]"#).is_err());
    }
}
