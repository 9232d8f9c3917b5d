//! Python-compatible text formatting: `repr(float)`, `str.splitlines`,
//! papermill's Python parameter translator and its parameter-cell inspection.

use serde_json::Value;

/// `repr(x)` of a Python float (shortest round-trip digits; scientific
/// notation when the decimal exponent is below -4 or above 16, as CPython's
/// `float_repr_style = 'short'` does).
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, e.g. "-1.25e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let ndigits = digits.len() as i32;
    let decpt = exp + 1;
    let body = if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
        } else if decpt >= ndigits {
            format!("{}{}.0", digits, "0".repeat((decpt - ndigits) as usize))
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            format!("{a}.{b}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exp_sign = if exp < 0 { '-' } else { '+' };
        if rest.is_empty() {
            format!("{first}e{exp_sign}{:02}", exp.abs())
        } else {
            format!("{first}.{rest}e{exp_sign}{:02}", exp.abs())
        }
    };
    format!("{sign}{body}")
}

/// Python's `str.splitlines(keepends)`.
pub(crate) fn splitlines(s: &str, keepends: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r'
            && let Some((j, '\n')) = iter.peek().copied()
        {
            iter.next();
            end = j + 1;
        }
        out.push(if keepends {
            &s[start..end]
        } else {
            &s[start..i]
        });
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Python's `str.isspace()` for one character.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Python's `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// A string literal as papermill's translator writes it: the value encoded
/// with Python's `unicode_escape` codec, `"` escaped, in double quotes.
pub(crate) fn py_str_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let cp = c as u32;
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            _ if cp >= 0x10000 => out.push_str(&format!("\\U{cp:08x}")),
            _ if cp >= 0x100 => out.push_str(&format!("\\u{cp:04x}")),
            _ if !(0x20..0x7f).contains(&cp) => out.push_str(&format!("\\x{cp:02x}")),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float literal as papermill's Python translator writes it.
pub(crate) fn py_float_literal(x: f64) -> String {
    if x.is_finite() {
        float_repr(x)
    } else if x.is_nan() {
        "float('nan')".into()
    } else if x < 0.0 {
        "float('-inf')".into()
    } else {
        "float('inf')".into()
    }
}

/// The Python literal papermill's `PythonTranslator` writes for a JSON value:
/// `None`, `True`/`False`, ints, floats (`repr`), strings (escaped, double
/// quotes), lists and dicts (recursively, `", "` separated).
pub fn python_literal(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                py_float_literal(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => py_str_literal(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_literal).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_literal(k), python_literal(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// The injected cell's source: `# Parameters\nname = literal\n…`.
pub(crate) fn codify<'a>(params: impl IntoIterator<Item = (&'a String, &'a Value)>) -> String {
    let mut content = String::from("# Parameters\n");
    for (name, value) in params {
        content.push_str(name);
        content.push_str(" = ");
        content.push_str(&python_literal(value));
        content.push('\n');
    }
    content
}

/// Whether `name` is usable as a Python variable name (an identifier that is
/// not a keyword).
pub(crate) fn is_python_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ];
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && !KEYWORDS.contains(&name)
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The names papermill's `PythonTranslator.inspect` finds in a parameters
/// cell (assignments `name = …` / `name: annotation = …`, multi-line values
/// grouped with the assignment above them, comments and blank lines skipped,
/// lines with more than one `=` ignored).
pub(crate) fn inspect_parameter_names(source: &str) -> Vec<String> {
    fn flatten(acc: &[&str]) -> String {
        let mut flat = String::new();
        if let Some((last, init)) = acc.split_last() {
            for line in init {
                match line.find('#') {
                    Some(pos) => flat.push_str(py_strip(&line[..pos])),
                    None => flat.push_str(py_strip(line)),
                }
            }
            flat.push_str(py_strip(last));
        }
        flat
    }
    let mut grouped: Vec<String> = Vec::new();
    let mut acc: Vec<&str> = Vec::new();
    for line in splitlines(source, false) {
        let stripped = py_strip(line);
        if stripped.is_empty() || stripped.starts_with('#') {
            continue;
        }
        let nequal = line.matches('=').count();
        if nequal > 0 {
            grouped.push(flatten(&acc));
            acc.clear();
            if nequal > 1 {
                continue;
            }
        }
        acc.push(line);
    }
    grouped.push(flatten(&acc));
    grouped
        .iter()
        .filter_map(|definition| assignment_target(definition))
        .collect()
}

/// The target of `PARAMETER_PATTERN` (`^(\w[\w_]*)\s*(:\s*["']?\w[\w_\[\],\s]*["']?\s*)?=`)
/// matched at the start of `definition`, if it matches.
fn assignment_target(definition: &str) -> Option<String> {
    let chars: Vec<char> = definition.chars().collect();
    let mut i = 0;
    if !chars.first().is_some_and(|c| is_word(*c)) {
        return None;
    }
    while i < chars.len() && is_word(chars[i]) {
        i += 1;
    }
    let target: String = chars[..i].iter().collect();
    let skip_ws = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let j = skip_ws(i);
    if chars.get(j) == Some(&'=') {
        return Some(target);
    }
    if chars.get(j) != Some(&':') {
        return None;
    }
    let mut k = skip_ws(j + 1);
    if matches!(chars.get(k), Some('"' | '\'')) {
        k += 1;
    }
    if !chars.get(k).is_some_and(|c| is_word(*c)) {
        return None;
    }
    while k < chars.len()
        && (is_word(chars[k]) || matches!(chars[k], '[' | ']' | ',') || chars[k].is_whitespace())
    {
        k += 1;
    }
    if matches!(chars.get(k), Some('"' | '\'')) {
        k += 1;
    }
    let k = skip_ws(k);
    (chars.get(k) == Some(&'=')).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (1e300, "1e+300"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.30000000000000004, "0.30000000000000004"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "repr({x})");
        }
        assert_eq!(py_float_literal(f64::NAN), "float('nan')");
        assert_eq!(py_float_literal(f64::NEG_INFINITY), "float('-inf')");
        assert_eq!(py_float_literal(f64::INFINITY), "float('inf')");
    }

    #[test]
    fn literals_match_papermill() {
        assert_eq!(python_literal(&json!(null)), "None");
        assert_eq!(python_literal(&json!(true)), "True");
        assert_eq!(python_literal(&json!(3)), "3");
        assert_eq!(python_literal(&json!(-3)), "-3");
        assert_eq!(python_literal(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(python_literal(&json!("it's")), r#""it's""#);
        assert_eq!(
            python_literal(&json!("a\"b\\c\nd\té\u{1F600}\u{263A}\u{7f}")),
            r#""a\"b\\c\nd\t\xe9\U0001f600\u263a\x7f""#
        );
        assert_eq!(
            python_literal(&json!({"b": [1, 2.5, "x"], "a": {}})),
            r#"{"a": {}, "b": [1, 2.5, "x"]}"#
        );
        assert_eq!(python_literal(&json!([])), "[]");
    }

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(
            splitlines("a\nb\r\nc\rd", true),
            ["a\n", "b\r\n", "c\r", "d"]
        );
        assert_eq!(splitlines("a\n\nb\n", false), ["a", "", "b"]);
        assert!(splitlines("", true).is_empty());
        assert_eq!(splitlines("x\u{2028}y", true), ["x\u{2028}", "y"]);
    }

    #[test]
    fn inspects_parameter_cells_like_papermill() {
        let src = "# defaults\nalpha = 0.1  # learning rate\nepochs: int = 3\nname: \"str\" = 'x'\n\
                   layers = [\n  1,\n  2,\n]\nx == y\nnp_arr: np.ndarray = None\n  \ncount += 1\n_private=1\n";
        assert_eq!(
            inspect_parameter_names(src),
            ["alpha", "epochs", "name", "layers", "_private"]
        );
        assert!(inspect_parameter_names("").is_empty());
    }

    #[test]
    fn identifiers() {
        assert!(is_python_identifier("alpha_2"));
        assert!(is_python_identifier("_x"));
        assert!(is_python_identifier("名前"));
        assert!(!is_python_identifier("2x"));
        assert!(!is_python_identifier("a-b"));
        assert!(!is_python_identifier("class"));
        assert!(!is_python_identifier(""));
    }
}
