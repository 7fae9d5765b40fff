//! `sepfit grad --emit numpy`: the generated Python source (structure, shared subexpressions as
//! locals, one gradient per `--wrt` variable) and its errors.

use std::process::{Command, Output};

fn sepfit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sepfit")).args(args).output().expect("run sepfit")
}

fn emitted(args: &[&str]) -> String {
    let o = sepfit(args);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).expect("UTF-8")
}

#[test]
fn least_squares_is_a_function_with_a_shared_residual() {
    let s = emitted(&["grad", "norm2(X*w - y)^2", "--wrt", "w", "--var", "X: n x d, w: d, y: n", "--emit", "numpy"]);
    assert!(s.starts_with("import numpy as np\n\n\ndef loss_and_grad(X, w, y):\n"), "{s}");
    for line in [
        "    X = np.asarray(X, dtype=np.float64)\n",
        "    w = np.asarray(w, dtype=np.float64).reshape(-1)\n",
        "    t_0 = X @ w - y\n",
        "    value = np.linalg.norm(t_0) ** 2\n",
        "    grad_w = 2 * (X.T @ t_0)\n",
        "    return float(value), grad_w\n",
    ] {
        assert!(s.contains(line), "missing {line:?} in\n{s}");
    }
    // the docstring shows the printed formulas
    assert!(s.contains("grad_w = 2·Xᵀ·(X·w − y)"), "{s}");
    // no helper is defined that is not used
    assert!(!s.contains("def _"), "{s}");
}

#[test]
fn definitions_keep_their_names_and_helpers_are_included() {
    let s = emitted(&[
        "grad",
        "z = X*w; J = sum(softplus(z) - y.*z)",
        "--wrt",
        "w,X",
        "--var",
        "X: n x d, w: d, y: n",
        "--emit",
        "numpy",
    ]);
    assert!(s.contains("    z = X @ w\n"), "{s}");
    assert!(s.contains("def _softplus(x):") && s.contains("def _sigmoid(x):"), "{s}");
    // sigmoid(z) − y is shared by both gradients
    assert!(s.contains("    t_0 = _sigmoid(z) - y\n"), "{s}");
    assert!(s.contains("    grad_w = X.T @ t_0\n"), "{s}");
    assert!(s.contains("    grad_X = np.outer(t_0, w)\n"), "{s}");
    assert!(s.contains("    return float(value), grad_w, grad_X\n"), "{s}");
    assert!(!s.contains("def _softmax"), "{s}");
}

#[test]
fn broadcasting_matrix_functions_and_dimensions() {
    let s = emitted(&["grad", "sum(exp(-(x - b').^2)) + logdet(A) + tr(A^3) + sum(exp(kron(A, A)))", "--wrt", "x,A", "--var", "x: n, b: m, A: k x k", "--emit", "numpy"]);
    assert!(s.contains("x[:, None] - b[None, :]"), "{s}");
    for f in ["np.linalg.slogdet(A)[1]", "np.linalg.matrix_power(A, 3)", "np.kron(A, A)", "def _kronsum_a(G, B):"] {
        assert!(s.contains(f), "missing {f} in\n{s}");
    }
}

#[test]
fn unsupported_functions_and_requests_are_errors() {
    let o = sepfit(&["grad", "sum(erf(X*w))", "--wrt", "w", "--var", "X: n x d, w: d", "--emit", "numpy"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot emit numpy code for `erf(X*w)`"), "{err}");
    assert!(err.contains("scipy.special.erf"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // a vector expression has a Jacobian, not a gradient function
    let o = sepfit(&["grad", "X*w", "--wrt", "w", "--var", "X: n x d, w: d", "--emit", "numpy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--emit needs a scalar loss"));
    // a Python keyword cannot be an argument
    let o = sepfit(&["grad", "norm2(lambda)^2", "--wrt", "lambda", "--var", "lambda: n", "--emit", "numpy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Python keyword"), "{}", String::from_utf8_lossy(&o.stderr));
    // unknown language: clap's error
    let o = sepfit(&["grad", "norm2(x)^2", "--wrt", "x", "--var", "x: n", "--emit", "fortran"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The README's example shows exactly what the program prints.
#[test]
fn readme_example_is_the_program_output() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let cmd = "sepfit grad \"norm2(X*w - y)^2\" --wrt w --var \"X: n x d, w: d, y: n\" --emit numpy\n```\n\n```python\n";
    let start = readme.find(cmd).expect("README has the --emit numpy example") + cmd.len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let s = emitted(&["grad", "norm2(X*w - y)^2", "--wrt", "w", "--var", "X: n x d, w: d, y: n", "--emit", "numpy"]);
    assert_eq!(block, s);
}
