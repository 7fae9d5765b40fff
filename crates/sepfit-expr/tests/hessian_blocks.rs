//! Cross blocks of the Hessian (`LossFormula::hessian_block`): `∂(∇_a J)/∂b` against central
//! differences of the gradient in `a` along each entry of `b`, and the symmetry
//! `block(a, b) = block(b, a)ᵀ`.

use sepfit_expr::matrix::{LossFormula, Mat, Values};

#[test]
fn cross_blocks_match_differences_and_are_symmetric() {
    let src = "sum(softplus(X*w + c) - y.*(X*w + c)) + c^2*norm2(w)^2 + sum(atan2(w, 1 + c^2))";
    let decls = "X: n x d, w: d, c: scalar, y: n";
    let mut f = LossFormula::new(src, decls, None).unwrap();
    let (gw, hwc) = f.hessian_block("w", "c").unwrap();
    let (_, hcw) = f.hessian_block("c", "w").unwrap();
    let (_, hww) = f.hessian_block("w", "w").unwrap();
    let (_, hh) = f.hessian("w").unwrap();
    assert_eq!(f.ascii(hww), f.ascii(hh));
    let x = Mat::from_rows(&[vec![1.0, 0.3, -0.2], vec![0.5, -1.1, 0.7], vec![-0.4, 0.9, 1.2], vec![0.2, 0.1, -0.8]]).unwrap();
    let mut v = Values::new();
    v.insert("X".into(), x);
    v.insert("w".into(), Mat::vector(vec![0.3, -0.6, 0.2]));
    v.insert("y".into(), Mat::vector(vec![1.0, 0.0, 1.0, 0.0]));
    let at = |v: &Values, c: f64| {
        let mut v = v.clone();
        v.insert("c".into(), Mat::scalar(c));
        f.eval(&[gw, hwc, hcw], &v).unwrap()
    };
    let c0 = 0.4;
    let out = at(&v, c0);
    let (wc, cw) = (&out[1], &out[2]);
    assert_eq!((wc.rows, wc.cols, cw.rows, cw.cols), (3, 1, 1, 3));
    let h = 1e-4;
    let gp = |c| at(&v, c)[0].data.clone();
    let (p1, m1, p2, m2) = (gp(c0 + h), gp(c0 - h), gp(c0 + 2.0 * h), gp(c0 - 2.0 * h));
    for i in 0..3 {
        let fd = (8.0 * (p1[i] - m1[i]) - (p2[i] - m2[i])) / (12.0 * h);
        assert!((wc.data[i] - fd).abs() <= 1e-8 * fd.abs().max(1.0), "entry {i}: {} vs differences {fd}", wc.data[i]);
        assert!((wc.data[i] - cw.data[i]).abs() <= 1e-12 * wc.data[i].abs().max(1.0), "not symmetric at {i}");
    }
    // a matrix variable has no Hessian block: an error, not a panic
    let mut f = LossFormula::new("normF(A)^2 + s^2", "A: n x n, s: scalar", None).unwrap();
    assert!(f.hessian_block("s", "A").is_err() && f.hessian_block("A", "s").is_err());
}
