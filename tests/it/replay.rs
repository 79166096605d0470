//! `vigil risk replay` and `vigil risk synth`: the real binary on the 19-row sample of the RBA
//! dataset and on synthetic logs, and the metric functions on hand-made cases.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vigil::risk::replay::{auc, tpr_at_fpr, Hist};

/// The first 19 rows of the public RBA dataset, kept in the repository with their licence
/// (tests/data/rba-dataset-head19/NOTICE.md) so a clone tests anywhere.
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/rba-dataset-head19/rba-dataset-head19.csv"
);

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env_remove("VIGIL_CONFIG")
        .output()
        .expect("run vigil")
}

fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "vigil failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn sample() -> PathBuf {
    let p = PathBuf::from(SAMPLE);
    assert!(
        p.exists(),
        "the RBA sample is missing: expected {}",
        p.display()
    );
    p
}

fn synth(dir: &Path, name: &str, users: u32, seed: u64) -> PathBuf {
    let out = dir.join(name);
    let status = vigil(&[
        "risk",
        "synth",
        "--users",
        &users.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    out
}

#[test]
fn replay_on_the_rba_sample_has_the_stable_keys() {
    let path = sample();
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("scores.csv");
    let v = ok_json(&vigil(&[
        "risk",
        "replay",
        "--input",
        path.to_str().unwrap(),
        "--json",
        "--scores-out",
        scores.to_str().unwrap(),
    ]));
    for key in [
        "events",
        "legit",
        "model",
        "by_attacker",
        "policy",
        "fairness",
        "latency_us",
        "baseline",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}: {v}");
    }
    for key in [
        "legit_step_up_rate",
        "legit_block_rate",
        "attack_block_rate",
        "attack_stop_rate",
    ] {
        assert!(v["policy"].get(key).is_some(), "policy.{key}");
    }
    assert!(v["latency_us"]["p50"].is_number() && v["latency_us"]["p99"].is_number());
    assert_eq!(v["events"]["rows"], 19);
    assert_eq!(v["baseline"]["model"], "freeman-ip-ua");
    // The 7 legitimate successful rows were scored, each with its index.
    let text = std::fs::read_to_string(&scores).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("index,score,decision,attack_model"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 7, "{text}");
    assert!(rows.iter().all(|l| l.ends_with(',') && !l.starts_with('-')));

    // The table form works too.
    let out = vigil(&["risk", "replay", "--input", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("policy"));
}

#[test]
fn malformed_rows_are_named_or_skipped_and_counted() {
    let text = std::fs::read_to_string(sample()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[5] = lines[5].replacen(",2020-02-03 ", ",not-a-date ", 1); // line 6
    lines[9] = "9,2020-02-03 12:44:00.000,1,,10.0.0.1,NO".into(); // line 10: too few fields
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = vigil(&["risk", "replay", "--input", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 6") && err.contains("Login Timestamp"),
        "{err}"
    );

    let v = ok_json(&vigil(&[
        "risk",
        "replay",
        "--input",
        bad.to_str().unwrap(),
        "--json",
        "--skip-malformed",
    ]));
    assert_eq!(v["events"]["malformed_skipped"], 2);
    assert_eq!(v["events"]["rows"], 17);

    // Going back in time is malformed too.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen(",2020-02-03 12:43:56.180,", ",2020-02-03 11:00:00.000,", 1);
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = vigil(&["risk", "replay", "--input", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 5") && err.contains("back in time"),
        "{err}"
    );
}

#[test]
fn synth_is_deterministic_and_has_the_published_shape() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth(dir.path(), "a.csv", 1000, 7);
    let b = synth(dir.path(), "b.csv", 1000, 7);
    let c = synth(dir.path(), "c.csv", 1000, 8);
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b, "same seed, same file");
    assert_ne!(a, c, "another seed, another file");

    let text = String::from_utf8(a).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| vigil::risk::replay::split_csv(l).unwrap())
        .collect();
    assert!(rows.iter().all(|r| r.len() == 16));
    let n = rows.len() as f64;
    let success = rows.iter().filter(|r| r[13] == "True").count() as f64 / n;
    let attack = rows.iter().filter(|r| r[14] == "True").count() as f64 / n;
    assert!((0.55..=0.65).contains(&success), "success share {success}");
    assert!((0.07..=0.13).contains(&attack), "attack-IP share {attack}");
    let mut per_user: HashMap<&str, u32> = HashMap::new();
    for r in rows.iter().filter(|r| r[14] == "False") {
        *per_user.entry(r[2].as_str()).or_default() += 1;
    }
    let mut counts: Vec<u32> = per_user.into_values().collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    assert!((1..=3).contains(&median), "median logins per user {median}");
    assert!(
        *counts.last().unwrap() >= 40,
        "a long tail: max {}",
        counts.last().unwrap()
    );
    // Time-ordered: replay accepts it.
    let v = vigil::risk::replay::parse_time(&rows[0][1]).unwrap();
    assert!(v.0 > 0);
}

#[test]
fn replay_on_a_synthetic_log_beats_chance() {
    let dir = tempfile::tempdir().unwrap();
    let log = synth(dir.path(), "s.csv", 300, 3);
    let v = ok_json(&vigil(&[
        "risk",
        "replay",
        "--input",
        log.to_str().unwrap(),
        "--json",
    ]));
    let naive = &v["by_attacker"]["naive"];
    let auc = naive["auc"]
        .as_f64()
        .expect("an AUC for the naive attacker");
    assert!(auc > 0.5, "vigil's AUC vs naive {auc}");
    for k in [
        "tpr_at_fpr_1pct",
        "tpr_at_fpr_0_1pct",
        "step_up_rate_at_tpr_99",
    ] {
        assert!(naive.get(k).is_some(), "{k}");
    }
    assert!(naive["step_up_rate_at_tpr_99"].get("12").is_some());
    assert!(naive["step_up_rate_at_tpr_99"].get("40").is_some());
    for m in ["vpn", "targeted", "very_targeted"] {
        assert!(v["by_attacker"][m]["auc"].is_number(), "{m}");
        assert!(v["baseline"]["by_attacker"][m]["auc"].is_number(), "{m}");
    }
    let stop = v["policy"]["attack_stop_rate"].as_f64().unwrap();
    let block = v["policy"]["attack_block_rate"].as_f64().unwrap();
    assert!(stop >= block);

    // Without injection the real takeovers are the attacks.
    let v = ok_json(&vigil(&[
        "risk",
        "replay",
        "--input",
        log.to_str().unwrap(),
        "--json",
        "--no-inject",
    ]));
    let by = v["by_attacker"].as_object().unwrap();
    assert!(by.keys().all(|k| k == "real_ato"), "{by:?}");
}

#[test]
fn metrics_on_hand_made_scores() {
    let legit = Hist::from_scores(&[0.0, 0.1, 0.2, 0.3, 0.4]);
    let attack = Hist::from_scores(&[1.0, 1.1, 1.2]);
    assert_eq!(auc(&legit, &attack), Some(1.0));
    assert_eq!(tpr_at_fpr(&legit, &attack, 0.01), Some(1.0));
    assert_eq!(tpr_at_fpr(&legit, &attack, 0.001), Some(1.0));
    // Reversed: the attacker always looks safer.
    assert_eq!(auc(&attack, &legit), Some(0.0));
    assert_eq!(tpr_at_fpr(&attack, &legit, 0.01), Some(0.0));
    // Identical scores: chance.
    let same = Hist::from_scores(&[0.5; 10]);
    assert_eq!(auc(&same, &same), Some(0.5));
    // Half the attacks above every legit score, half tied with all of them.
    let attack = Hist::from_scores(&[0.5, 0.5, 2.0, 2.0]);
    assert_eq!(auc(&same, &attack), Some(0.75));
    assert_eq!(tpr_at_fpr(&same, &attack, 0.01), Some(0.5));
    assert_eq!(auc(&Hist::default(), &attack), None);
}

/// The shipping gate on a small synthetic log: the shipped version beats the one before it
/// on every attacker model, and the gate's exit code follows its verdict. (With 300 users the
/// fairness groups are small, so a single sign-in can move a group's rate by 10 %: the verdict
/// itself is checked on the 2,000-user log in the README, not here.)
#[test]
fn the_shipped_version_beats_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = synth(dir.path(), "s.csv", 300, 3);
    let out = vigil(&[
        "risk",
        "compare",
        "--input",
        log.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let checks = v["checks"].as_array().unwrap();
    for c in checks
        .iter()
        .filter(|c| c["what"].as_str().unwrap().starts_with("AUC"))
    {
        assert_eq!(c["pass"], true, "{c}");
    }
    assert_eq!(v["ship"].as_bool(), Some(out.status.success()), "{v}");
    assert_eq!(
        v["candidate"]["model_name"],
        vigil::risk::MODEL_CODE_VERSION
    );
    let previous = vigil::risk::config::previous_version(vigil::risk::MODEL_CODE_VERSION).unwrap();
    assert_eq!(v["previous"]["model_name"], previous);
    // The baseline now has a policy and fairness of its own.
    assert!(v["candidate"]["baseline"]["policy"]["legit_step_up_rate"].is_number());
    assert!(v["candidate"]["baseline"]["fairness"]["groups"].is_object());

    // The other way round the gate refuses, with exit code 1.
    let out = vigil(&[
        "risk",
        "compare",
        "--input",
        log.to_str().unwrap(),
        "--candidate",
        previous,
        "--previous",
        vigil::risk::MODEL_CODE_VERSION,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("REJECT"));

    // A log it cannot read is not a verdict: exit 2, never 1.
    let missing = dir.path().join("missing.csv");
    let out = vigil(&["risk", "compare", "--input", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `risk fit` prints a configuration the gate accepts as a candidate: non-negative fitted
/// weights, the pinned country weight unchanged.
#[test]
fn fit_prints_a_candidate_the_gate_can_judge() {
    let dir = tempfile::tempdir().unwrap();
    let train = synth(dir.path(), "train.csv", 300, 11);
    let eval = synth(dir.path(), "eval.csv", 300, 12);
    let out = vigil(&["risk", "fit", "--input", train.to_str().unwrap()]);
    let cfg = ok_json(&out);
    let levels = cfg["weights"]["levels"].as_object().unwrap();
    assert_eq!(levels.len(), 8);
    assert!(levels.values().all(|w| w.as_f64().unwrap() >= 0.0), "{cfg}");
    assert_eq!(levels["country"], 1.0, "pinned");
    assert!(cfg["weights"]["hour"].as_f64().unwrap() >= 0.0);
    let file = dir.path().join("candidate.json");
    std::fs::write(&file, cfg.to_string()).unwrap();
    let out = vigil(&[
        "risk",
        "compare",
        "--input",
        eval.to_str().unwrap(),
        "--candidate",
        file.to_str().unwrap(),
        "--previous",
        vigil::risk::MODEL_CODE_VERSION,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert!(
        v["candidate"]["by_attacker"]["naive"]["auc"].is_number(),
        "{v}"
    );
    assert_eq!(v["ship"].as_bool(), Some(out.status.success()));
}
