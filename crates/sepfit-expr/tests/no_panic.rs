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
