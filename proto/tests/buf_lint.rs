//! The .proto files pass `buf lint` (STANDARD rules, proto/buf.yaml). buf comes from
//! the npm registry into tools/ (scripts/setup.sh installs it).

use std::path::Path;
use std::process::Command;

#[test]
fn the_protos_pass_buf_lint() {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR"));
    let buf = proto.join("../tools/node_modules/.bin/buf");
    assert!(buf.exists(), "buf is not installed at {}: run scripts/setup.sh (npm install --prefix tools)", buf.display());
    let out = Command::new(&buf).arg("lint").current_dir(proto).output().expect("buf runs");
    assert!(
        out.status.success(),
        "buf lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
