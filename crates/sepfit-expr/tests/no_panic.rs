//! No input panics: random strings over the formula alphabet (and arbitrary Unicode) either
//! parse or give a diagnostic whose span lies inside the source and renders.

use proptest::prelude::*;
use sepfit_expr::{ModelFormula, Program};

fn check(src: &str) -> Result<(), TestCaseError> {
    match ModelFormula::parse(src, &["t", "y", "x"]) {
        Ok(m) => {
            // Whatever parses also compiles and evaluates without panicking.
            let mut outs = vec![m.rhs(), m.lhs()];
            outs.extend(m.gradient());
            outs.extend(m.basis());
            let prog = Program::new(m.pool(), &outs, &m.param_syms(), &m.column_syms())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let cols = [vec![0.5, -1.0, 2.0], vec![1.0, 0.0, 3.0], vec![0.0, 1e300, -2.0]];
            let colrefs: Vec<&[f64]> = cols.iter().map(|c| c.as_slice()).collect();
            let mut bufs = vec![vec![0.0; 3]; outs.len()];
            let mut slices: Vec<&mut [f64]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
            let params = vec![0.7; m.params().len()];
            prop_assert!(prog.evaluator().eval(&params, &colrefs, &mut slices).is_ok());
            let _ = m.print(m.rhs());
            let _ = m.latex(m.rhs());
        }
        Err(d) => {
            prop_assert!(d.span.start <= d.span.end && d.span.end <= src.len(), "span {:?} outside {src:?}", d.span);
            let text = d.render(src);
            prop_assert!(text.starts_with("error: "));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
    #[test]
    fn formula_alphabet_never_panics(src in "[ taybxe0-9.()+*/^~=;,'_-]{0,40}|y ~ [a-z0-9.()+*/^ -]{0,30}") {
        check(&src)?;
    }

    #[test]
    fn arbitrary_unicode_never_panics(src in "\\PC{0,30}") {
        check(&src)?;
    }
}

/// Formulas over the functions of two arguments (`atan2`, `max`, `min`), with random argument
/// lists (none, one, two, three, nested, constants that fold to NaN or infinity), in model
/// formulas and in loss formulas with their gradients and Hessians.
fn two_argument_src() -> impl Strategy<Value = String> {
    let arg = prop_oneof![
        Just("t".to_string()),
        Just("a*t".to_string()),
        Just("0".to_string()),
        Just("-0".to_string()),
        Just("1e308*10".to_string()),
        Just("b".to_string()),
        "-?[0-9]{1,3}(\\.[0-9])?",
    ];
    let f = prop_oneof![Just("atan2"), Just("max"), Just("min")];
    (f.clone(), prop::collection::vec(arg, 0..4), f, any::<bool>()).prop_map(|(f, args, g, nest)| {
        let inner = args.join(", ");
        if nest { format!("{g}({f}({inner}), t)") } else { format!("{f}({inner})") }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn functions_of_two_arguments_never_panic(body in two_argument_src()) {
        check(&format!("y ~ {body}"))?;
        let loss = format!("sum({})", body.replace('t', "x").replace('a', "w"));
        if let Ok(mut f) = sepfit_expr::matrix::LossFormula::new(&loss, "x: n, w: scalar, b: scalar", None) {
            let mut v = sepfit_expr::matrix::Values::new();
            v.insert("x".into(), sepfit_expr::matrix::Mat::vector(vec![0.0, -1.0, 2.0]));
            v.insert("w".into(), sepfit_expr::matrix::Mat::scalar(0.0));
            v.insert("b".into(), sepfit_expr::matrix::Mat::scalar(-0.5));
            if let Ok(g) = f.gradient("x") {
                let _ = f.eval(&[f.root(), g], &v);
                let _ = f.ascii(g);
            }
            if let Ok((_, h)) = f.hessian("x") {
                let _ = f.eval(&[h], &v);
            }
        }
    }
}
