//! Help, completions and the man page, generated from the clap definitions.

use crate::common::*;

use predicates::prelude::*;

#[test]
fn every_command_shows_an_example() {
    for command in [
        "analyze",
        "presets",
        "classify",
        "evaluate",
        "bench",
        "sweep",
        "completions",
        "man",
    ] {
        cli()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example").and(predicate::str::contains("mobilenet-cli")));
    }
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        cli()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("sweep"));
    }
    cli()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH mobilenet-cli 1"));
    cli().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    cli().assert().code(2).stderr(predicate::str::contains("Usage"));
}
