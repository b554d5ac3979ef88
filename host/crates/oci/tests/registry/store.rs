//! The store refuses to be shared: a store others can write is not used.

use crate::*;
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn a_store_writable_by_others_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("oci");
    ContentStore::open(&root).expect("open");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = ContentStore::open(&root).expect_err("world-writable store");
    assert!(matches!(e, OciError::Store { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains(&root.display().to_string()) && m.contains("chmod go-w"),
        "{m}"
    );
    assert_eq!(e.kind(), toka_spec::outcome::ErrorKind::Host);
}
