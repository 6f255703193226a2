//! `workstation decode IMAGE...`: reads image files through the same pipeline as the
//! scan station and prints, per file, the symbology, the raw text and the parsed
//! fields (or JSON for machines). A file with no code says so.

use controller::scan::{FrameError, decode_staged};
use hal::codes::{GS, UnitCode};
use serde::Serialize;
use std::path::PathBuf;

/// One file's result, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct FileResult {
    pub file: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbology: Option<String>,
    /// The symbol's text, GS separators shown as `<GS>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<UnitCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// Which preprocessing the frame needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Decodes each file; true when every file gave a code.
pub fn run(files: &[PathBuf], json: bool) -> bool {
    let results: Vec<FileResult> = files.iter().map(|f| decode_file(f)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&results).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
    } else {
        for r in &results {
            print_human(r);
        }
    }
    results.iter().all(|r| r.ok)
}

fn decode_file(path: &std::path::Path) -> FileResult {
    let file = path.display().to_string();
    let failed = |error: String| FileResult { file: file.clone(), ok: false, symbology: None, raw: None, code: None, canonical: None, stage: None, error: Some(error) };
    let frame = match hal::camera::load_grey(path) {
        Ok(frame) => frame,
        Err(e) => return failed(e),
    };
    match decode_staged(&frame) {
        Ok((d, stage)) => FileResult {
            file: file.clone(),
            ok: true,
            symbology: Some(d.symbology),
            raw: Some(d.text.replace(GS, "<GS>")),
            canonical: Some(d.code.canonical()),
            code: Some(d.code),
            stage: Some(format!("{stage:?}")),
            error: None,
        },
        Err(FrameError::NoCode) => failed("no code found".into()),
        Err(e @ FrameError::Unparseable { .. }) => failed(e.to_string()),
    }
}

fn print_human(r: &FileResult) {
    let Some(code) = &r.code else {
        println!("{}: {}", r.file, r.error.as_deref().unwrap_or("no code"));
        return;
    };
    println!("{}: {} ({})", r.file, code.symbology_name(), r.symbology.as_deref().unwrap_or("-"));
    println!("  raw        {}", r.raw.as_deref().unwrap_or(""));
    match code {
        UnitCode::Gs1(c) => {
            println!("  GTIN (01)  {}", c.gtin);
            println!("  expiry(17) {}", c.expiry.map_or("-".into(), |d| d.to_string()));
            println!("  lot (10)   {}", c.lot.as_deref().unwrap_or("-"));
            println!("  serial(21) {}", c.serial.as_deref().unwrap_or("-"));
        }
        UnitCode::Cn20(c) => {
            println!("  product    {}", c.product_id());
            println!("  serial     {}", &c.digits[7..]);
        }
    }
}
