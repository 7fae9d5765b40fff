//! Seed 000: `y = a1·exp(b1·t1) + a2·exp(b2·t2)`, fitted by variable projection.
//!
//! The data (`data/seed000.csv`) come from the seed's R code with `set.seed(2024)`
//! (`scripts/seed000_data.R`). Only b1 and b2 need starting values: a1 and a2 are eliminated
//! by linear least squares at every step.
//!
//! Run: `cargo run --release -p sepfit --example seed000`

use sepfit::named::{Dataset, NamedOptions, fit_formula};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/seed000.csv");
    let data = read_csv(path)?;
    let opts = NamedOptions { start: vec![("b1".into(), 0.4), ("b2".into(), 0.6)], ..Default::default() };
    let r = fit_formula("y ~ a1*exp(b1*t1) + a2*exp(b2*t2)", &data, &opts)?;
    println!("converged: {} ({})", r.fit.converged, r.fit.termination.message());
    println!("{:<4} {:>12} {:>12} {:>8} {:>10}", "", "estimate", "std.error", "t", "p");
    for p in &r.params {
        println!(
            "{:<4} {:>12.7} {:>12.7} {:>8.3} {:>10.3e}{}",
            p.name,
            p.value,
            p.std_error,
            p.t_value,
            p.p_value,
            if p.linear { "  (linear)" } else { "" }
        );
    }
    println!("residual standard error {:.6} on {} degrees of freedom", r.fit.residual_std_error, r.fit.dof);
    println!("iterations {}, path of (b1, b2): {} points", r.fit.iterations, r.fit.path.len());
    Ok(())
}

/// A minimal CSV reader for this example (the CLI has the full one).
fn read_csv(path: &str) -> Result<Dataset, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let names: Vec<String> = lines.next().ok_or("empty file")?.split(',').map(|s| s.trim().to_string()).collect();
    let mut cols = vec![Vec::new(); names.len()];
    for line in lines.filter(|l| !l.trim().is_empty()) {
        for (c, v) in line.split(',').enumerate() {
            cols[c].push(v.trim().parse::<f64>()?);
        }
    }
    Ok(Dataset::new(names, cols)?)
}
