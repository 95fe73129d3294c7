//! HTML building blocks of the pages: escaping, `{{marker}}` filling, the
//! shared page frame (inline CSS, light and dark, phone-sized), inline SVG
//! QR codes. No scripts, no external resources.

/// Escape text for HTML element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // A config value never looks like a `{{marker}}`.
            '{' => out.push_str("&#123;"),
            '}' => out.push_str("&#125;"),
            c => out.push(c),
        }
    }
    out
}

/// Replace each `{{name}}` of `template` by the escaped value of `name`,
/// in one pass (a value is never scanned for markers). Markers without a
/// value stay as they are (tests look for them).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                let name = &after[..j];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(&escape(v)),
                    None => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

const CSS: &str = "\
:root{color-scheme:light dark;--bg:#fdfdfb;--fg:#1d1d1f;--muted:#5b5b60;--accent:#0b5cad;--card:#f1f1ee;--warn:#8a4b00;--ok:#1f6d2a;--bad:#a3161b}\
@media (prefers-color-scheme:dark){:root{--bg:#141416;--fg:#ececef;--muted:#a8a8b0;--accent:#7db7ff;--card:#222226;--warn:#ffb35c;--ok:#7fd88a;--bad:#ff8a8e}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);font:17px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;overflow-wrap:anywhere}\
main{max-width:42rem;margin:0 auto;padding:1rem 1.1rem 2rem}\
nav{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;padding:.8rem 1.1rem;max-width:42rem;margin:0 auto}\
a{color:var(--accent)}\
h1{font-size:1.6rem;line-height:1.25;margin:.6rem 0 1rem}\
h2{font-size:1.2rem;margin:1.8rem 0 .5rem}\
.qr{background:#fff;padding:12px;border-radius:8px;width:min(100%,20rem);margin:1rem auto;display:block}\
.qr svg{display:block;width:100%;height:auto}\
.link{display:block;text-align:center;font-weight:600;font-size:1.1rem;margin:.5rem 0}\
.raw{font:13px/1.4 ui-monospace,monospace;background:var(--card);padding:.5rem;border-radius:6px}\
.card{background:var(--card);border-radius:8px;padding:.8rem 1rem;margin:1rem 0}\
.warn{color:var(--warn);font-weight:600}\
.missing{color:var(--warn);font-style:italic}\
.ok{color:var(--ok)}.bad{color:var(--bad)}\
dl{display:grid;grid-template-columns:minmax(7rem,max-content) 1fr;gap:.3rem 1rem}dt{color:var(--muted)}dd{margin:0}\
footer{color:var(--muted);font-size:.9rem;margin-top:2.5rem}\
button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:1px solid var(--muted);background:var(--card);color:var(--fg)}\
";

/// A whole page: `title` is already escaped, `body` is trusted HTML.
pub fn page(lang: &str, title: &str, nav: &str, body: &str, footer: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title}</title><style>{CSS}</style></head>\n<body>\n<nav>{nav}</nav>\n<main>\n<h1>{title}</h1>\n{body}\n<footer>{footer}</footer>\n</main>\n</body></html>\n"
    )
}

/// `data` as an inline SVG QR code (error correction M), or a note when it
/// does not fit a QR code.
pub fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .quiet_zone(true)
                .min_dimensions(240, 240)
                .dark_color(qrcode::render::svg::Color("#000000"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .build();
            // Drop the XML declaration: the SVG sits inside HTML.
            let svg = match svg.find("<svg") {
                Some(i) => &svg[i..],
                None => &svg[..],
            };
            format!("<div class=\"qr\" role=\"img\" aria-label=\"QR code\">{svg}</div>")
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn fill_escapes_and_leaves_unknown_markers() {
        assert_eq!(
            fill("{{a}} and {{b}}", &[("a", "<i>")]),
            "&lt;i&gt; and {{b}}"
        );
        // A value that itself looks like a marker is not expanded again.
        assert_eq!(
            fill("{{a}}", &[("a", "{{b}}"), ("b", "<")]),
            "&#123;&#123;b&#125;&#125;"
        );
    }

    #[test]
    fn qr_is_inline_svg() {
        let q = qr_svg("DCACCOUNT:https://example.org/new");
        assert!(q.contains("<svg") && !q.contains("<?xml"), "{q}");
    }
}
