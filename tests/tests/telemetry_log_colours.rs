//! Readable log lines written by `telemetry::init`, in a child process: coloured where `CLICOLOR_FORCE`
//! asks for it (and `NO_COLOR` does not refuse it), plain on a pipe otherwise, and ending with the trace
//! ids inside a span either way.

use std::process::Command;

const ESCAPE: char = '\u{1b}';

/// The lines `log_in_span` writes under `vars`, and the `trace_id span_id` of its span.
fn log_in_span(vars: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_log_in_span"));
    for name in ["CLICOLOR_FORCE", "NO_COLOR", "RUST_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        command.env_remove(name);
    }
    command.env("HARDENED_TELEMETRY__LOG_FORMAT", "readable").envs(vars.iter().copied());
    let output = command.output().expect("log_in_span runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 lines");
    let lines: Vec<String> =
        stdout.lines().filter(|line| line.contains("inside") || line.contains("outside")).map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    (lines, stderr.lines().last().expect("the ids").to_owned())
}

/// `line` without its escape codes (`ESC [ … m`).
fn plain(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(ESCAPE) {
        plain.push_str(&rest[..start]);
        let end = rest[start..].find('m').expect("an escape code ends with m");
        rest = &rest[start + end + 1..];
    }
    plain.push_str(rest);
    plain
}

fn assert_ids_end_the_line_inside_only(lines: &[String], ids: &str) {
    let (trace_id, span_id) = ids.split_once(' ').expect("two ids");
    let last = format!(" n=1 trace_id={trace_id} span_id={span_id}");
    assert!(plain(&lines[0]).ends_with(&last), "{last} at the end of {:?}", lines[0]);
    assert!(!lines[1].contains("trace_id"), "{:?}", lines[1]);
}

#[test]
fn forced_colours_colour_the_line_inside_a_span_as_the_one_outside() {
    let (lines, ids) = log_in_span(&[("CLICOLOR_FORCE", "1")]);
    for line in &lines {
        assert!(line.contains(ESCAPE), "coloured: {line:?}");
    }
    assert_ids_end_the_line_inside_only(&lines, &ids);
}

#[test]
fn a_pipe_gets_plain_lines_and_no_color_overrides_the_force() {
    for vars in [&[][..], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")][..], &[("CLICOLOR_FORCE", "0")][..]] {
        let (lines, ids) = log_in_span(vars);
        for line in &lines {
            assert!(!line.contains(ESCAPE), "plain under {vars:?}: {line:?}");
        }
        assert_ids_end_the_line_inside_only(&lines, &ids);
    }
}
