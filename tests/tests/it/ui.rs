//! Compile-time behaviour of `#[derive(EtlTable)]`: models that must compile, and mistakes
//! that must be one clear error at the offending field (snapshots in `ui/fail/*.stderr`).
//! Refresh the snapshots with `TRYBUILD=overwrite cargo test -p etl-tests --test it ui::`.

#[test]
fn ui() {
    let _trybuild = crate::common::trybuild_lock();
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
