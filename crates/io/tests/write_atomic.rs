//! The atomic write: whole files or nothing, and errors that name the file.

#[test]
fn write_atomic_replaces_whole_files_and_names_the_file_on_error() {
    let dir = std::env::temp_dir().join(format!("dynaprune-io-test-{}", std::process::id()));
    let file = dir.join("a/b/state.bin");
    dynaprune_io::write_atomic(&file, b"first").unwrap();
    dynaprune_io::write_atomic(&file, b"second, longer").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"second, longer");
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["state.bin"], "no temporary file is left behind");
    // A directory where the file should go: the rename fails, the error names the target.
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    let e = dynaprune_io::write_atomic(&blocked, b"x").unwrap_err().to_string();
    assert!(e.contains("blocked"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
