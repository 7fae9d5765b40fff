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

/// A compiled formula bound to data again and again gives the same bits as a model compiled
/// anew for each data set, and predicts without the response.
#[test]
fn compiled_formula_reused() {
    use sepfit::FitOptions;
    use sepfit::formula::CompiledFormula;
    use std::sync::Arc;
    let t: Vec<f64> = (0..200).map(|i| i as f64 * 0.03).collect();
    let m = ModelFormula::parse("y ~ a1*exp(-k1*t) + a2*exp(-k2*t) + c", &["t", "y"]).unwrap();
    let compiled = Arc::new(CompiledFormula::new(m.clone()).unwrap());
    let opts = FitOptions::with_start(&[2.0, 0.2]);
    let mut reused = None::<FormulaModel>;
    for (k, (k1, k2)) in [(1.5, 0.3), (2.5, 0.4), (1.5, 0.3)].into_iter().enumerate() {
        let y: Vec<f64> = t.iter().map(|t| 2.0 * (-k1 * t).exp() + 0.7 * (-k2 * t).exp() + 0.1 + 1e-3 * ((k + 1) as f64 * t).sin()).collect();
        let fresh = FormulaModel::new(m.clone(), &[&t, &y]).unwrap().fit(&opts).unwrap();
        let bound = CompiledFormula::bind(&compiled, &[&t, &y]).unwrap().fit(&opts).unwrap();
        let model = match &mut reused {
            Some(r) => {
                r.set_data(&[&t, &y]).unwrap();
                r
            }
            None => reused.insert(CompiledFormula::bind(&compiled, &[&t, &y]).unwrap()),
        };
        let again = model.fit(&opts).unwrap();
        for f in [&bound, &again] {
            assert_eq!(f.nonlinear, fresh.nonlinear);
            assert_eq!(f.linear, fresh.linear);
            assert_eq!(f.stats.std_errors, fresh.stats.std_errors);
            assert_eq!(f.rss.to_bits(), fresh.rss.to_bits());
        }
        // Predictions on new points need only the right-hand side's column.
        let tn = [0.0, 0.5, 4.0];
        let p = compiled.predict(&fresh.linear, &fresh.nonlinear, &[&tn, &[]]).unwrap();
        // `FormulaModel::predict` takes the used columns in order of first appearance: y, t.
        assert_eq!(m.used_columns(), vec![1, 0]);
        let old = model.predict(&fresh.linear, &fresh.nonlinear, &[&[0.0; 3], &tn]).unwrap();
        assert_eq!(p, old);
        for (pi, &ti) in p.iter().zip(&tn) {
            let (a, b) = (&fresh.linear, &fresh.nonlinear);
            let want = a[0] * (-b[0] * ti).exp() + a[1] * (-b[1] * ti).exp() + a[2];
            assert!((pi - want).abs() < 1e-14 * want.abs());
        }
    }
    assert_eq!(compiled.rhs_columns(), vec![0]);
    let e = compiled.predict(&[1.0], &[1.0, 1.0], &[&[0.0], &[]]).unwrap_err();
    assert!(matches!(e, sepfit::FormulaModelError::ParamCount { linear: 3, nonlinear: 2, .. }), "{e}");
    let e = compiled.predict(&[1.0; 3], &[1.0; 2], &[&[0.0]]).unwrap_err();
    assert!(matches!(e, sepfit::FormulaModelError::ColumnCount { .. }), "{e}");
}
