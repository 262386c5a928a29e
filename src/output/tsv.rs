//! Zeek's ASCII log format (TSV with `#` headers), so `zeek-cut` and Zeek log tooling read the
//! `--log-dir` logs: `#separator`, `#set_separator`, `#empty_field`, `#unset_field`, `#path`,
//! `#open`, `#fields`, `#types`, rows, `#close`.
//!
//! Values come from the record's JSON form (one serialization for both formats), formatted by the
//! column's Zeek type: times with microseconds, `T`/`F`, sets joined by `,`, `-` when unset,
//! `(empty)` for an empty string or set. Like Zeek, a backslash is doubled and the separators and
//! non-printable bytes are written `\xNN`.

use crate::event::zeek::{LogSchema, ZeekType};
use serde_json::Value;
use std::io::{self, Write};

pub const SEPARATOR: char = '\t';
pub const SET_SEPARATOR: char = ',';
pub const EMPTY_FIELD: &str = "(empty)";
pub const UNSET_FIELD: &str = "-";

/// Zeek's `#open`/`#close` time: wall clock, `YYYY-MM-DD-HH-MM-SS` (UTC).
pub fn zeek_wall_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d-%H-%M-%S")
        .to_string()
}

pub fn write_header(w: &mut dyn Write, schema: &LogSchema, open: &str) -> io::Result<()> {
    writeln!(w, "#separator \\x09")?;
    writeln!(w, "#set_separator{SEPARATOR}{SET_SEPARATOR}")?;
    writeln!(w, "#empty_field{SEPARATOR}{EMPTY_FIELD}")?;
    writeln!(w, "#unset_field{SEPARATOR}{UNSET_FIELD}")?;
    writeln!(w, "#path{SEPARATOR}{}", schema.path)?;
    writeln!(w, "#open{SEPARATOR}{open}")?;
    let names: Vec<&str> = schema.fields.iter().map(|f| f.0).collect();
    writeln!(w, "#fields{SEPARATOR}{}", names.join("\t"))?;
    let types: Vec<&str> = schema.fields.iter().map(|f| f.1.name()).collect();
    writeln!(w, "#types{SEPARATOR}{}", types.join("\t"))
}

pub fn write_close(w: &mut dyn Write, close: &str) -> io::Result<()> {
    writeln!(w, "#close{SEPARATOR}{close}")
}

/// One row: the columns of `schema` taken from `record` (a JSON object) by name.
pub fn write_row(w: &mut dyn Write, schema: &LogSchema, record: &Value) -> io::Result<()> {
    let mut line = String::with_capacity(256);
    for (i, (name, ty)) in schema.fields.iter().enumerate() {
        if i > 0 {
            line.push(SEPARATOR);
        }
        format_value(&mut line, record.get(*name), *ty);
    }
    line.push('\n');
    w.write_all(line.as_bytes())
}

fn format_value(out: &mut String, v: Option<&Value>, ty: ZeekType) {
    use std::fmt::Write as _;
    let Some(v) = v.filter(|v| !v.is_null()) else {
        out.push_str(UNSET_FIELD);
        return;
    };
    match (ty, v) {
        (ZeekType::Time | ZeekType::Interval, Value::Number(n)) => {
            let _ = write!(out, "{:.6}", n.as_f64().unwrap_or(0.0));
        }
        (ZeekType::Bool, Value::Bool(b)) => out.push(if *b { 'T' } else { 'F' }),
        (ZeekType::SetString | ZeekType::VectorString, Value::Array(items)) => {
            if items.is_empty() {
                out.push_str(EMPTY_FIELD);
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(SET_SEPARATOR);
                }
                match item {
                    Value::String(s) => escape_into(out, s, true),
                    other => escape_into(out, &other.to_string(), true),
                }
            }
        }
        (_, Value::String(s)) if s.is_empty() => out.push_str(EMPTY_FIELD),
        (_, Value::String(s)) if s == UNSET_FIELD => out.push_str("\\x2d"),
        (_, Value::String(s)) => escape_into(out, s, false),
        (_, Value::Bool(b)) => out.push(if *b { 'T' } else { 'F' }),
        (_, other) => escape_into(out, &other.to_string(), false),
    }
}

fn escape_into(out: &mut String, s: &str, in_set: bool) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            SEPARATOR => out.push_str("\\x09"),
            SET_SEPARATOR if in_set => out.push_str("\\x2c"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::zeek::schema;
    use serde_json::json;

    #[test]
    fn rows_follow_zeek_conventions() {
        let s = schema("dce_rpc").unwrap();
        let rec = json!({
            "ts": 1.5, "uid": "Cabc", "id.orig_h": "192.0.2.1", "id.orig_p": 5, "id.resp_h": "192.0.2.2",
            "id.resp_p": 445, "named_pipe": "\\PIPE\\svcctl", "endpoint": "svcctl", "operation": "",
            "stub_encrypted": false, "arguments": ["a,b", "c\td"], "interfaces": []
        });
        let mut out = Vec::new();
        write_row(&mut out, s, &rec).unwrap();
        let row = String::from_utf8(out).unwrap();
        let cols: Vec<&str> = row.trim_end().split('\t').collect();
        assert_eq!(cols.len(), s.fields.len());
        let col = |n: &str| cols[s.fields.iter().position(|f| f.0 == n).unwrap()];
        assert_eq!(col("ts"), "1.500000");
        assert_eq!(col("named_pipe"), "\\\\PIPE\\\\svcctl");
        assert_eq!(col("operation"), "(empty)");
        assert_eq!(col("rtt"), "-");
        assert_eq!(col("stub_encrypted"), "F");
        assert_eq!(col("arguments"), "a\\x2cb,c\\x09d");
        assert_eq!(col("interfaces"), "(empty)");
    }
}
