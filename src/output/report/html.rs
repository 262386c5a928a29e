//! The page: `page.html` with `report.css`, `report.js` and the run's data inlined, so the file
//! needs nothing but itself.
//!
//! The data is JSON inside `<script type="application/json">`. Alert fields come off the wire, so
//! the JSON is written with `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`: the same JSON to
//! `JSON.parse`, but no byte sequence that could end the script element (`</script`) or open a
//! comment (`<!--`) in the HTML parser. The script only ever puts data into the page as text
//! (`textContent`, `createTextNode`, attribute values through `setAttribute`), never as markup.
//! Behind both, the page's Content-Security-Policy runs only the script carrying this render's
//! nonce (no inline event handlers) and loads nothing from anywhere.

use super::ReportData;
use std::io::{self, Write};

const PAGE: &str = include_str!("page.html");
const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

const CSS_SLOT: &str = "/*{{CSS}}*/";
const JS_SLOT: &str = "/*{{JS}}*/";
const DATA_SLOT: &str = "{{DATA}}";
const NONCE_SLOT: &str = "{{NONCE}}";

/// Writes JSON bytes with the HTML-significant ASCII characters as JSON `\u` escapes. They can
/// only occur inside JSON strings, and being ASCII they never sit inside a UTF-8 sequence, so a
/// byte-wise replacement keeps the JSON equal.
struct ScriptSafe<W: Write>(W);

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            let esc: &[u8] = match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            self.0.write_all(&buf[start..i])?;
            self.0.write_all(esc)?;
            start = i + 1;
        }
        self.0.write_all(&buf[start..])?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A CSP nonce nobody writing the alerts could know in advance: the page's script hashed with the
/// time and process of this render (hex is a valid nonce alphabet).
fn nonce() -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::new()
        .chain_update(JS.as_bytes())
        .chain_update(now.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn render(data: &ReportData, out: &mut dyn Write) -> io::Result<()> {
    let nonce = nonce();
    let (head, tail) = PAGE
        .split_once(DATA_SLOT)
        .expect("page.html has a data slot");
    let head = head.replace(NONCE_SLOT, &nonce).replacen(CSS_SLOT, CSS, 1);
    let tail = tail.replace(NONCE_SLOT, &nonce).replacen(JS_SLOT, JS, 1);
    out.write_all(head.as_bytes())?;
    serde_json::to_writer(ScriptSafe(&mut *out), data).map_err(io::Error::other)?;
    out.write_all(tail.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::report::input::AlertRecord;
    use crate::output::report::ReportBuilder;

    #[test]
    fn inlined_style_and_script_cannot_close_their_elements() {
        for (name, text) in [("report.css", CSS), ("report.js", JS)] {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("</"), "{name} contains `</`");
            assert!(!lower.contains("<!--"), "{name} contains `<!--`");
        }
        assert_eq!(PAGE.matches(CSS_SLOT).count(), 1);
        assert_eq!(PAGE.matches(JS_SLOT).count(), 1);
        assert_eq!(PAGE.matches(DATA_SLOT).count(), 1);
        assert_eq!(
            PAGE.matches(NONCE_SLOT).count(),
            2,
            "the CSP and the script"
        );
        // Nothing to fetch: no external references in the page's own text (the SVG namespace is
        // a name, not a fetch).
        for t in [PAGE, CSS, JS] {
            let t = t.replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(!t.contains("http:") && !t.contains("https:") && !t.contains("//cdn"));
        }
    }

    #[test]
    fn hostile_strings_stay_inside_the_json() {
        let hostile = "</script><img src=x onerror=alert(1)><!-- & \u{2028}";
        let mut b = ReportBuilder::new(vec![hostile.into()]);
        let line = serde_json::json!({
            "kind": "technique", "ts": 1.0, "src_ip": "192.0.2.1", "dst_ip": "192.0.2.2",
            "service_name": hostile, "binary_path": "</SCRIPT >", "evidence": []
        });
        b.add_alert(serde_json::from_value::<AlertRecord>(line).unwrap());
        let mut page = Vec::new();
        render(&b.finish(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        let start = page
            .find(r#"<script type="application/json" id="report-data">"#)
            .unwrap();
        let body = &page[start..];
        let json_start = body.find('>').unwrap() + 1;
        let json_end = body.find("</script>").unwrap();
        let json = &body[json_start..json_end];
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["alerts"][0]["service_name"], hostile);
        assert_eq!(v["alerts"][0]["binary_path"], "</SCRIPT >");
        assert_eq!(v["inputs"][0], hostile);
        assert!(!page.to_ascii_lowercase().contains("<img"));
        let n = nonce();
        assert_eq!(n.len(), 32);
        assert!(!page.contains(NONCE_SLOT));
    }
}
