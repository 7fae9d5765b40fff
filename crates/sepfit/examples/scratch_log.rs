use sepfit::FormulaModel;
use sepfit::batch::{BatchFitter, DEFAULT_BATCH_TOL};
use sepfit::problem::NamedOptions;
fn main() {
    let text = std::fs::read_to_string("/tmp/flim20.csv").unwrap();
    let mut curves: Vec<(Vec<f64>, Vec<f64>)> = vec![];
    for line in text.lines().skip(1) {
        let v: Vec<&str> = line.split(',').collect();
        let c: usize = v[0].parse().unwrap();
        if curves.len() <= c { curves.push((vec![], vec![])); }
        curves[c].0.push(v[1].parse().unwrap());
        curves[c].1.push(v[2].parse().unwrap());
    }
    let opts = NamedOptions { start: vec![("tau1".into(), 0.5), ("tau2".into(), 3.0)], ..Default::default() };
    let mut f = BatchFitter::new("y ~ a1*exp(-t/tau1) + a2*exp(-t/tau2) + bg", &["t".into(), "y".into()], &opts).unwrap();
    f.set_tolerance(DEFAULT_BATCH_TOL);
    for (t, y) in curves.iter().take(6) {
        let mut model = FormulaModel::new(f.resolved().formula.clone(), &[t, y]).unwrap();
        let r = sepfit::fit(&mut model, y, &f.resolved().options).unwrap();
        println!("nfev {} njev {} term {:?} b {:?}", r.residual_evaluations, r.jacobian_evaluations, r.termination, r.nonlinear);
        for l in &r.log { println!("  {:?}", l); }
        for p in &r.path { println!("  path {:?}", p); }
    }
}
