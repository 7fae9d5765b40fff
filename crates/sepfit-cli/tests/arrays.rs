//! `sepfit batch` on arrays of curves without text: `.npz` archives (stored and deflated
//! members), raw float32/float64 files of either byte order with `--dtype`/`--shape`, and
//! results written as a `.npy` structured array (with resume after a kill). Every input gives
//! the same rows as the same curves in a `.npy` file (themselves equal to long CSV, tested in
//! `batch_robust.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    match std::env::var_os("SEPFIT_BIN") {
        Some(b) => Command::new(b),
        None => Command::new(env!("CARGO_BIN_EXE_sepfit")),
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sepfit-arrays-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const MODEL: &str = "y ~ a*exp(-k*t) + c";
const LEN: usize = 24;

/// `n` decays of `LEN` points (t = 0.2 i), with a NaN in curve 5.
fn curves(n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n * LEN);
    for c in 0..n {
        let k = 0.4 + (c % 37) as f64 * 0.03;
        for i in 0..LEN {
            let t = i as f64 * 0.2;
            v.push(if c == 5 && i == 3 { f64::NAN } else { 3.0 * (-k * t).exp() + 0.2 + 1e-3 * ((c * LEN + i) as f64 * 0.7).sin() });
        }
    }
    v
}

/// A `.npy` file of `descr` values (`bytes` already encoded) of `shape`.
fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    out
}

fn le64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn run(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["batch", s(data), "--model", MODEL, "--x", "t=0:0.2", "--start", "k=1", "--out", s(out)];
    a.extend_from_slice(extra);
    bin().args(&a).output().unwrap()
}

/// A zip archive (what `numpy.savez` writes) with the given members.
fn npz(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in members {
        w.start_file(format!("{name}.npy"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn npz_and_raw_inputs_give_the_same_rows_as_npy() {
    let d = dir("inputs");
    let vals = curves(30);
    let shape = format!("(3, 10, {LEN})");
    let reference = d.join("in.npy");
    std::fs::write(&reference, npy("<f8", &shape, &le64(&vals))).unwrap();
    let want_out = d.join("want.csv");
    let o = run(&reference, &want_out, &[]);
    assert_eq!(o.status.code(), Some(1), "one curve has a NaN: {}", err(&o));
    let want = std::fs::read(&want_out).unwrap();
    let same = |data: &Path, extra: &[&str], what: &str| {
        let got = d.join("got.csv");
        let o = run(data, &got, extra);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", err(&o));
        assert_eq!(std::fs::read(&got).unwrap(), want, "{what}: rows differ from the .npy input's");
    };
    let t: Vec<f64> = (0..LEN).map(|i| i as f64 * 0.2).collect();
    let y_npy = npy("<f8", &shape, &le64(&vals));
    let t_npy = npy("<f8", &format!("({LEN},)"), &le64(&t));
    for (method, label) in [(zip::CompressionMethod::Stored, "stored"), (zip::CompressionMethod::Deflated, "deflated")] {
        let only = d.join(format!("only-{label}.npz"));
        std::fs::write(&only, npz(&[("decays", &y_npy)], method)).unwrap();
        same(&only, &[], &format!(".npz ({label}), one array"));
        let two = d.join(format!("two-{label}.npz"));
        std::fs::write(&two, npz(&[("t", &t_npy), ("y", &y_npy)], method)).unwrap();
        same(&two, &[], &format!(".npz ({label}), the array named y"));
        same(&two, &["--array", "y"], &format!(".npz ({label}), --array y"));
    }
    // Raw files: each dtype and byte order (float32 values are the same curves rounded).
    let raw = |name: &str, bytes: Vec<u8>| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let f64le = raw("a.f64", le64(&vals));
    same(&f64le, &["--dtype", "f64", "--shape", "3x10x24"], "raw f64");
    let f64be = raw("a.f64be", vals.iter().flat_map(|x| x.to_be_bytes()).collect());
    same(&f64be, &["--dtype", "f64be", "--shape", "3,10,24"], "raw f64 big-endian");
    let v32: Vec<f32> = vals.iter().map(|&x| x as f32).collect();
    let f32_npy = d.join("in32.npy");
    std::fs::write(&f32_npy, npy("<f4", &shape, &v32.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())).unwrap();
    let want32 = d.join("want32.csv");
    assert_eq!(run(&f32_npy, &want32, &[]).status.code(), Some(1));
    for (name, bytes, dtype) in [
        ("a.f32", v32.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(), "f32"),
        ("a.f32be", v32.iter().flat_map(|x| x.to_be_bytes()).collect(), "f32be"),
    ] {
        let p = raw(name, bytes);
        let got = d.join("got32.csv");
        assert_eq!(run(&p, &got, &["--dtype", dtype, "--shape", "30x24"]).status.code(), Some(1));
        assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&want32).unwrap(), "raw {dtype}");
    }
    // Mistakes are errors that say what to do (exit 2).
    let fails = |data: &Path, extra: &[&str], needle: &str| {
        let o = run(data, &d.join("x.csv"), extra);
        assert_eq!(o.status.code(), Some(2), "{}", err(&o));
        assert!(err(&o).contains(needle), "expected {needle:?} in {}", err(&o));
    };
    fails(&f64le, &["--dtype", "f64", "--shape", "3x10x25"], "check --shape and --dtype");
    fails(&f64le, &["--dtype", "f16", "--shape", "3x10x24"], "--dtype");
    fails(&f64le, &["--dtype", "f64", "--shape", "3x0x24"], "--shape");
    let two = d.join("two-stored.npz");
    fails(&two, &["--array", "z"], "has no array `z`");
    let three = d.join("three.npz");
    std::fs::write(&three, npz(&[("a", &y_npy), ("b", &y_npy)], zip::CompressionMethod::Stored)).unwrap();
    fails(&three, &[], "--array NAME");
    fails(&reference, &["--array", "y"], "not one");
    let junk = raw("junk.npz", b"not a zip file at all".to_vec());
    fails(&junk, &[], "not a .npz archive");
}

/// The fields and shape of a `.npy` structured array of float64 fields, and its records.
fn read_structured(bytes: &[u8]) -> (String, Vec<Vec<f64>>) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "data aligned to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap().to_string();
    let nfields = header.matches("'<f8')").count();
    let recs = bytes[10 + hlen..].chunks(8 * nfields).map(|r| r.chunks(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()).collect();
    (header, recs)
}

#[test]
fn npy_results_hold_the_csv_numbers_shaped_like_the_input() {
    let d = dir("npyout");
    let vals = curves(30);
    let data = d.join("in.npy");
    std::fs::write(&data, npy("<f8", &format!("(3, 10, {LEN})"), &le64(&vals))).unwrap();
    let (csv_out, npy_out) = (d.join("r.csv"), d.join("r.npy"));
    assert_eq!(run(&data, &csv_out, &[]).status.code(), Some(1));
    let o = run(&data, &npy_out, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("status field"), "{}", err(&o));
    let (header, recs) = read_structured(&std::fs::read(&npy_out).unwrap());
    assert!(header.contains("'shape': (3, 10)"), "{header}");
    for f in ["'a'", "'a_se'", "'k'", "'k_se'", "'c'", "'rss'", "'dof'", "'iterations'", "'converged'", "'status'"] {
        assert!(header.contains(f), "{f} missing in {header}");
    }
    assert_eq!(recs.len(), 30);
    let text = std::fs::read_to_string(&csv_out).unwrap();
    let mut lines = text.lines();
    let cols: Vec<&str> = lines.next().unwrap().split(',').collect();
    let names: Vec<String> = header.split("('").skip(1).map(|p| p.split('\'').next().unwrap().to_string()).collect();
    for (rec, line) in recs.iter().zip(lines) {
        let f: Vec<&str> = line.split(',').collect();
        for (name, v) in names.iter().zip(rec) {
            let want = match name.as_str() {
                "converged" => f64::from(u8::from(f[cols.iter().position(|c| *c == "converged").unwrap()] == "true")),
                "status" => match f[cols.iter().position(|c| *c == "status").unwrap()] {
                    "converged" => 0.0,
                    "not_converged" => 1.0,
                    "degenerate" => 2.0,
                    _ => 3.0,
                },
                _ => f[cols.iter().position(|c| c == name).unwrap()].parse::<f64>().unwrap(),
            };
            assert!(want.to_bits() == v.to_bits() || (want.is_nan() && v.is_nan()), "curve {}: {name} {v} vs CSV {want}", f[0]);
        }
    }
    assert_eq!(recs[5][recs[5].len() - 1], 3.0, "the NaN curve is an error");
    // .npy results need an array input.
    let csv_in = d.join("in.csv");
    std::fs::write(&csv_in, "curve,t,y\n1,0,1\n1,1,2\n").unwrap();
    let o = bin().args(["batch", s(&csv_in), "--by", "curve", "--model", MODEL, "--start", "k=1", "--out", s(&npy_out)]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("array inputs"), "{}", err(&o));
}

/// Killed mid-run (and cut inside a record), a `.npy` output resumes to the same bytes as an
/// uninterrupted run.
#[test]
fn npy_results_resume_after_a_kill() {
    let d = dir("npyresume");
    let n = 40_000;
    let vals = curves(n);
    let data = d.join("in.npy");
    std::fs::write(&data, npy("<f8", &format!("({n}, {LEN})"), &le64(&vals))).unwrap();
    let whole = d.join("whole.npy");
    assert_eq!(run(&data, &whole, &[]).status.code(), Some(1));
    let want = std::fs::read(&whole).unwrap();
    let out = d.join("r.npy");
    let partial = d.join("r.npy.partial");
    let args = ["batch", s(&data), "--model", MODEL, "--x", "t=0:0.2", "--start", "k=1", "--threads", "1", "--chunk", "16", "--out", s(&out)];
    let mut child = bin().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let mut killed = false;
    while t0.elapsed() < Duration::from_secs(60) {
        if std::fs::metadata(&partial).is_ok_and(|m| m.len() > 200 * 88) {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.wait();
    assert!(killed, "the batch finished before it could be interrupted");
    // A cut inside a record (a kill in the middle of a write).
    let len = std::fs::metadata(&partial).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&partial).unwrap().set_len(len - 13).unwrap();
    let o = run(&data, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "a rerun without --resume is refused: {}", err(&o));
    assert!(err(&o).contains("--resume"), "{}", err(&o));
    let o = run(&data, &out, &["--resume"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("skipped as already done"), "{}", err(&o));
    assert_eq!(std::fs::read(&out).unwrap(), want, "resumed output differs from an uninterrupted run");
}
