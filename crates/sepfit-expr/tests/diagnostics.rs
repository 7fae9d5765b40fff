//! Every class of formula error renders with the formula, a caret under the offending text, and
//! a hint. Expected renderings are kept as insta snapshots next to the inputs.

use sepfit_expr::{DiagnosticKind, ModelFormula, ModelOptions};
use std::time::Instant;

fn render(src: &str) -> String {
    render_with(src, &["t", "y"], &[])
}

fn render_with(src: &str, cols: &[&str], declared: &[&str]) -> String {
    let opts = ModelOptions { declared_params: declared, ..Default::default() };
    match ModelFormula::parse_with(src, cols, &opts) {
        Ok(_) => panic!("expected an error for {src:?}"),
        Err(e) => e.render(src),
    }
}

fn kind(src: &str) -> DiagnosticKind {
    ModelFormula::parse(src, &["t", "y"]).unwrap_err().kind
}

#[test]
fn unknown_function_with_suggestion() {
    insta::assert_snapshot!(render("y ~ a*exq(-b*t)"), @r"
    error: unknown function `exq`
      |
    1 | y ~ a*exq(-b*t)
      |       ^^^ unknown function
      = help: did you mean `exp`?
      = help: known functions: exp, log, log10, sqrt, sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, abs, sigmoid, softplus, log1p, expm1, erf, erfc, relu, step, xlogy, atan2, max, min
    ");
    assert!(render("y ~ arctan(t)").contains("did you mean `atan`?"));
}

#[test]
fn unclosed_parenthesis() {
    insta::assert_snapshot!(render("y ~ a*exp(-(b*t)"), @r"
    error: unclosed parenthesis
      |
    1 | y ~ a*exp(-(b*t)
      |          ^ this `(` is never closed
      = help: add the missing `)`
    ");
}

#[test]
fn unmatched_closing_parenthesis() {
    insta::assert_snapshot!(render("y ~ a*exp(-b*t))"), @r"
    error: unmatched closing parenthesis
      |
    1 | y ~ a*exp(-b*t))
      |                ^ no `(` opens this
      = help: remove this `)` or add the `(` it should close
    ");
}

#[test]
fn missing_tilde() {
    insta::assert_snapshot!(render("a*exp(-b*t)"), @r"
    error: a model formula needs `~` between the response and the model
      |
    1 | a*exp(-b*t)
      | ^^^^^^^^^^^ no `~` in this formula
      = help: write `RESPONSE ~ MODEL`, e.g. `y ~ a*exp(-b*t)`; data columns: `t`, `y`
    ");
}

#[test]
fn empty_formula() {
    insta::assert_snapshot!(render("   "), @r"
    error: the formula is empty
      |
    1 |    
      | ^ nothing here
      = help: write a model such as `y ~ a*exp(-b*t) + c`
    ");
    assert_eq!(kind(""), DiagnosticKind::EmptyFormula);
}

#[test]
fn empty_sides() {
    insta::assert_snapshot!(render("y ~ "), @r"
    error: the right-hand side of `~` is empty
      |
    1 | y ~ 
      |   ^ model expected after `~`
      = help: write the model after `~`, as in `y ~ a*exp(-b*t)`
    ");
    assert_eq!(kind("~ a*t"), DiagnosticKind::EmptySide);
}

#[test]
fn trailing_operator() {
    insta::assert_snapshot!(render("y ~ a*exp(-b*t) +"), @r"
    error: operator `+` has no right operand
      |
    1 | y ~ a*exp(-b*t) +
      |                 ^ expected an operand after this, found end of formula
      = help: remove the trailing `+` or complete the expression
    ");
    assert_eq!(kind("y ~ a*(t^)"), DiagnosticKind::UnexpectedEnd);
}

#[test]
fn parameter_shadows_column() {
    insta::assert_snapshot!(render_with("y ~ a*exp(-t*x)", &["t", "x", "y"], &["a", "t"]), @r"
    error: parameter `t` shadows the data column `t`
      |
    1 | y ~ a*exp(-t*x)
      |            ^ this is a data column
      = help: rename the parameter (e.g. `t_0`) or the column; a name in the data is always data
    ");
    assert!(render("u = 2*t; t = 3; y ~ a*u").contains("shadows the data column `t`"));
}

#[test]
fn log_of_negative_constant() {
    insta::assert_snapshot!(render("y ~ a*log(-2)*t"), @r"
    error: `log` of the constant -2: the logarithm of a negative number is not real
      |
    1 | y ~ a*log(-2)*t
      |           ^^ this is -2
    ");
    assert_eq!(kind("y ~ a*sqrt(1-4)*t"), DiagnosticKind::DomainError);
    assert_eq!(kind("y ~ a*t/0"), DiagnosticKind::DomainError);
}

#[test]
fn other_errors_have_spans_and_hints() {
    insta::assert_snapshot!(render("y ~ 2a*t"), @r"
    error: expected an operator before `a`
      |
    1 | y ~ 2a*t
      |      ^ missing operator
      = help: multiplication must be written out: `2*x`, not `2x` or `2 x`
    ");
    insta::assert_snapshot!(render("y ~ a*t(1+b)"), @r"
    error: `t` is not a function
      |
    1 | y ~ a*t(1+b)
      |       ^ called like a function
      = help: write multiplication explicitly: `t*(...)`
    ");
    insta::assert_snapshot!(render("y + k ~ a*t"), @r"
    error: `k` in the response is not a data column
      |
    1 | y + k ~ a*t
      |     ^ not a column
      = help: the left-hand side of `~` may only use data columns: `t`, `y`
    ");
    insta::assert_snapshot!(render("y ~ a*t $ b"), @r"
    error: unexpected character `$`
      |
    1 | y ~ a*t $ b
      |         ^ not part of the formula language
      = help: formulas use numbers, names, `+ - * / ^`, `.* ./ .^`, `'`, parentheses, `,`, `~`, `=` and `;`
    ");
    assert_eq!(kind("y ~ a*1e999"), DiagnosticKind::BadNumber);
    assert_eq!(kind("y ~ a*1.2.3"), DiagnosticKind::BadNumber);
    assert_eq!(kind("y ~ exp(t, 2)"), DiagnosticKind::WrongArity);
    assert_eq!(kind("y ~ a*t ~ b"), DiagnosticKind::MissingTilde);
    assert_eq!(kind("y ~ a*t'"), DiagnosticKind::NotAllowedHere);
    assert_eq!(kind("y ~ exp*t"), DiagnosticKind::NotAFunction);
}

#[test]
fn long_lines_are_clipped_around_the_span() {
    let src = format!("y ~ {} + exq(t)", vec!["a*t"; 2000].join(" + "));
    let text = render(&src);
    assert!(text.contains("..."), "{text}");
    assert!(text.lines().all(|l| l.chars().count() < 200), "{text}");
    assert!(text.contains("did you mean `exp`"));
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let t0 = Instant::now();
    let src = format!("y ~ {}a*t{}", "(".repeat(50_000), ")".repeat(50_000));
    let e = ModelFormula::parse(&src, &["t", "y"]).unwrap_err();
    assert_eq!(e.kind, DiagnosticKind::TooDeep);
    let src = format!("y ~ {}t", "-".repeat(50_000));
    assert_eq!(ModelFormula::parse(&src, &["t", "y"]).unwrap_err().kind, DiagnosticKind::TooDeep);
    let src = format!("y ~ t{}", "^t".repeat(50_000));
    assert_eq!(ModelFormula::parse(&src, &["t", "y"]).unwrap_err().kind, DiagnosticKind::TooDeep);
    let src = format!("y ~ {}t{}", "exp(".repeat(50_000), ")".repeat(50_000));
    assert_eq!(ModelFormula::parse(&src, &["t", "y"]).unwrap_err().kind, DiagnosticKind::TooDeep);
    assert!(t0.elapsed().as_secs_f64() < 2.0, "took {:?}", t0.elapsed());
}

#[test]
fn megabyte_formulas_get_a_result_or_an_error_quickly() {
    // ~1 MB polynomial-like model with few parameters: parse, structure, derivatives and
    // printing are loops over the graph, never recursions.
    let terms: Vec<String> = (0..90_000).map(|i| format!("a*t^{}", i % 5000 + 2)).collect();
    let src = format!("y ~ {} + c*exp(-k*t)", terms.join(" + "));
    assert!(src.len() > 900_000, "{}", src.len());
    let t0 = Instant::now();
    let m = ModelFormula::parse(&src, &["t", "y"]).unwrap();
    let lin: Vec<_> = m.linear_params().map(|p| p.name.as_str()).collect();
    assert_eq!(lin, ["a", "c"]);
    assert!(m.print(m.rhs()).len() > 50_000);
    // ~1 MB of distinct parameter names: a clear error, quickly.
    let terms: Vec<String> = (0..90_000).map(|i| format!("a{i}*t")).collect();
    let src = format!("y ~ {}", terms.join(" + "));
    assert!(src.len() > 900_000);
    let e = ModelFormula::parse(&src, &["t", "y"]).unwrap_err();
    assert_eq!(e.kind, DiagnosticKind::TooManyParameters);
    // A long left-deep chain of one operator.
    let src = format!("y ~ {}", vec!["t"; 300_000].join("-"));
    let m = ModelFormula::parse(&src, &["t", "y"]).unwrap();
    assert_eq!(m.params().len(), 0);
    assert_eq!(m.pool().eval(m.rhs(), &|_| 1.0), 1.0 - 299_999.0);
    assert!(t0.elapsed().as_secs_f64() < 10.0, "took {:?}", t0.elapsed());
}

/// Functions of numpy, MATLAB and R that the loss language writes otherwise get the way to
/// write them.
#[test]
fn loss_functions_from_other_languages_say_how_to_write_them() {
    use sepfit_expr::matrix::LossFormula;
    for (src, hint) in [
        ("mean((X*w - y).^2)", "write `sum(x)/n`"),
        ("dot(w, w)", "`a'*b`"),
        ("norm(w)", "`norm2(x)`"),
        ("sum(square(w))", "`x.^2`"),
        ("sum(transpose(X)*y)", "`A'`"),
    ] {
        let e = match LossFormula::new(src, "X: n x d, w: d, y: n", None) {
            Err(sepfit_expr::matrix::LossError::Formula(d)) => d.render(src),
            other => panic!("{src}: {:?}", other.map(|_| ())),
        };
        assert!(e.contains("unknown function") && e.contains(hint), "{src}: {e}");
    }
}
