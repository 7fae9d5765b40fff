//! The formula adapter: the compiled basis derivatives agree with central differences of the
//! basis, and value-only evaluation agrees with the full evaluation.

use sepfit::{FormulaModel, ModelEval, SeparableModel};
use sepfit_expr::ModelFormula;

fn check(formula: &str, b: &[f64]) {
    let t: Vec<f64> = (0..300).map(|i| 0.05 + i as f64 * 0.02).collect();
    let y = vec![1.0; t.len()];
    let m = ModelFormula::parse(formula, &["t", "y"]).unwrap();
    let mut model = FormulaModel::new(m, &[&t, &y]).unwrap();
    let mut full = ModelEval::new(&model);
    model.eval(b, &mut full).unwrap();
    let mut vals = ModelEval::new(&model);
    model.eval_values(b, &mut vals).unwrap();
    assert_eq!(full.basis, vals.basis, "{formula}");
    assert_eq!(full.offset, vals.offset, "{formula}");
    let pattern = model.basis_derivative_pattern().to_vec();
    let opattern = model.offset_derivative_pattern().to_vec();
    for k in 0..b.len() {
        let h = 1e-6 * b[k].abs().max(1.0);
        let (mut bp, mut bm) = (b.to_vec(), b.to_vec());
        bp[k] += h;
        bm[k] -= h;
        let (mut ep, mut em) = (ModelEval::new(&model), ModelEval::new(&model));
        model.eval_values(&bp, &mut ep).unwrap();
        model.eval_values(&bm, &mut em).unwrap();
        for j in 0..model.n_linear() {
            let col = pattern.iter().position(|&(jj, kk)| jj == j && kk == k);
            for i in (0..t.len()).step_by(17) {
                let fd = (ep.basis[(i, j)] - em.basis[(i, j)]) / (2.0 * h);
                let exact = col.map_or(0.0, |c| full.d_basis[(i, c)]);
                assert!((fd - exact).abs() <= 1e-6 * exact.abs().max(1.0), "{formula}: dφ{j}/db{k} row {i}: {exact} vs {fd}");
            }
        }
        if model.has_offset() {
            let col = opattern.iter().position(|&kk| kk == k);
            for i in (0..t.len()).step_by(17) {
                let fd = (ep.offset[i] - em.offset[i]) / (2.0 * h);
                let exact = col.map_or(0.0, |c| full.d_offset[(i, c)]);
                assert!((fd - exact).abs() <= 1e-6 * exact.abs().max(1.0), "{formula}: dφ0/db{k} row {i}: {exact} vs {fd}");
            }
        }
    }
}

#[test]
fn derivatives_match_central_differences() {
    check("y ~ a1*exp(-b1*t) + a2*exp(-b2*t) + c", &[1.3, 0.2]);
    check("y ~ (b1/b2)*exp(-0.5*((t-b3)/b2)^2)", &[0.8, 3.0]);
    check("y ~ b1 - b2*t - atan(b3/(t-b4))/pi", &[0.5, -1.0]);
    check("y ~ exp(-p1*t)/(p2 + p3*t)", &[0.3, 1.0, 0.5]);
    check("y ~ a*exp(-k*t)*cos(w*t) + b*exp(-k*t)*sin(w*t)", &[0.4, 2.5]);
    check("y ~ b1/((1+exp(b2-b3*t))^(1/b4))", &[1.0, 0.7, 1.5]);
}
