//! `wsctl camera snapshot FILE`: a frame from the scan station, saved as PNG with
//! the label region the decoder searched marked in green.

use super::Ctx;
use crate::failure::Result;
use crate::show;
use dispense_proto::v1 as pb;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Save a frame as PNG.
    Snapshot {
        /// Where to write the PNG.
        file: PathBuf,
    },
}

impl Cmd {
    pub async fn run(self, ctx: &Ctx) -> Result<()> {
        let Cmd::Snapshot { file } = self;
        let shot = ctx.maintenance().camera_snapshot(pb::CameraSnapshotRequest {}).await?.into_inner();
        std::fs::write(&file, &shot.png).map_err(|e| crate::failure::Failure::new(crate::failure::Exit::Other, format!("{}: {e}", file.display())))?;
        if ctx.json {
            return show::json(&serde_json::json!({"file": file, "width": shot.width, "height": shot.height, "code": shot.code, "detail": shot.detail, "region": shot.region}));
        }
        println!("{}: {}x{} frame, {} bytes", file.display(), shot.width, shot.height, shot.png.len());
        match shot.region.as_slice() {
            [x, y, w, h] => println!("label region {w}x{h} at ({x}, {y}), marked green"),
            _ => println!("no label region stands out"),
        }
        if shot.code.is_empty() {
            println!("no code read: {}", shot.detail);
        } else {
            println!("code {} ({})", shot.code, shot.detail);
        }
        Ok(())
    }
}
