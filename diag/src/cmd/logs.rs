//! `wsctl logs export FILE --since 24h`: the journal and the controller's log for a
//! time window, in one file for the service desk.

use super::Ctx;
use crate::failure::{Exit, Failure, Result};
use crate::show;
use dispense_proto::v1 as pb;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Write the journal (CSV) and the controller's log lines to FILE.
    Export {
        file: PathBuf,
        /// How far back (e.g. 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = show::span)]
        since: chrono::Duration,
    },
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let Cmd::Export { file, since } = self;
        let (from, to) = (chrono::Utc::now() - since, chrono::Utc::now());
        let request = pb::ExportLogsRequest { start_time: Some(show::timestamp(from)), end_time: Some(show::timestamp(to)) };
        let mut stream = ctx.maintenance().export_logs(request).await?.into_inner();
        let cannot = |e: std::io::Error| Failure::new(Exit::Other, format!("{}: {e}", file.display()));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).map_err(cannot)?);
        let mut sizes: Vec<(String, usize)> = Vec::new();
        while let Some(chunk) = stream.message().await? {
            if sizes.last().is_none_or(|(name, _)| *name != chunk.file_name) {
                // Each part under a header, so one file carries both.
                let gap = if sizes.is_empty() { "" } else { "\n" };
                writeln!(out, "{gap}===== {} ({} to {} UTC) =====", chunk.file_name, from.format("%F %T"), to.format("%F %T")).map_err(cannot)?;
                sizes.push((chunk.file_name.clone(), 0));
            }
            out.write_all(&chunk.data).map_err(cannot)?;
            if let Some(last) = sizes.last_mut() {
                last.1 += chunk.data.len();
            }
        }
        out.flush().map_err(cannot)?;
        if ctx.json {
            let parts: Vec<_> = sizes.iter().map(|(n, b)| serde_json::json!({"name": n, "bytes": b})).collect();
            return show::json(&serde_json::json!({"file": file, "from": from.to_rfc3339(), "to": to.to_rfc3339(), "parts": parts}));
        }
        let parts: Vec<String> = sizes.iter().map(|(n, b)| format!("{n} {b} bytes")).collect();
        println!("{}: {}", file.display(), parts.join(", "));
        Ok(())
    }
}
