//! The loss landscape of variable projection: the reduced loss
//! `L(b) = ‖W(y − P(b) y)‖²` (linear parameters eliminated) over a grid of two nonlinear
//! parameters, and a plain gradient descent with a simple step search (many small normalised
//! steps: it shows how slowly steepest descent crawls along a curved valley), whose gradient is
//! the envelope-theorem gradient `∇_b L = 2 Jᵀ r` with `J` the exact Golub–Pereyra Jacobian.

use crate::error::FitError;
use crate::solvers::lm::LeastSquaresProblem;
use crate::model::SeparableModel;
use crate::problems::varpro::{JacobianKind, VarProProblem};
use rayon::prelude::*;

/// The reduced loss on a rectangular grid.
#[derive(Clone, Debug)]
pub struct LossGrid {
    /// Index (among the nonlinear parameters) of the x axis.
    pub kx: usize,
    /// Index of the y axis.
    pub ky: usize,
    /// Grid values along x.
    pub xs: Vec<f64>,
    /// Grid values along y.
    pub ys: Vec<f64>,
    /// `z[j * xs.len() + i]` = loss at `(xs[i], ys[j])`; NaN where the model cannot be evaluated.
    pub z: Vec<f64>,
}

/// Evaluates the reduced loss over `xs × ys` for nonlinear parameters `kx`, `ky`, holding the
/// others at `at`. Rows are evaluated in parallel, each worker with its own copy of the model.
pub fn reduced_loss_grid<M>(
    model: &M,
    y: &[f64],
    sigma: Option<&[f64]>,
    at: &[f64],
    (kx, ky): (usize, usize),
    xs: &[f64],
    ys: &[f64],
) -> Result<LossGrid, FitError>
where
    M: SeparableModel + Clone + Send + Sync,
{
    // Validate once (lengths, finiteness, sigma) before going parallel.
    let mut probe = model.clone();
    VarProProblem::new(&mut probe, y, sigma, JacobianKind::GolubPereyra)?;
    let nx = xs.len();
    let mut z = vec![f64::NAN; nx * ys.len()];
    z.par_chunks_mut(nx.max(1)).zip(ys.par_iter()).for_each_init(
        || model.clone(),
        |m, (row, &yv)| {
            let Ok(mut prob) = VarProProblem::compact(m, y, sigma, JacobianKind::GolubPereyra) else { return };
            let mut b = at.to_vec();
            b[ky] = yv;
            for (cell, &xv) in row.iter_mut().zip(xs) {
                b[kx] = xv;
                *cell = match prob.project(&b) {
                    Ok(()) => prob.rss(),
                    Err(_) => f64::NAN,
                };
            }
        },
    );
    Ok(LossGrid { kx, ky, xs: xs.to_vec(), ys: ys.to_vec(), z })
}

/// Iterates of a descent, with their losses.
#[derive(Clone, Debug, Default)]
pub struct DescentPath {
    /// Parameter vectors, starting with the start.
    pub points: Vec<Vec<f64>>,
    /// Reduced loss at each point.
    pub losses: Vec<f64>,
    /// Why it stopped.
    pub stopped: String,
}

/// Gradient descent on the reduced loss with a simple step search: at each step move along `−∇L/‖∇L‖` by the
/// best of 100 step lengths `max_step·10^s`, `s` evenly spaced in `[−2, 0.001]`, keeping a step
/// only if it lowers the loss; stop after `iterations` steps or when no step length helps.
pub fn step_search_descent<M: SeparableModel + ?Sized>(
    model: &mut M,
    y: &[f64],
    sigma: Option<&[f64]>,
    start: &[f64],
    max_step: f64,
    iterations: usize,
) -> Result<DescentPath, FitError> {
    let mut prob = VarProProblem::compact(model, y, sigma, JacobianKind::GolubPereyra)?;
    let (n, q) = (prob.n_residuals(), prob.n_params());
    let mut r = vec![0.0; n];
    let mut jac = vec![0.0; n * q];
    let loss = |prob: &mut VarProProblem<'_, M>, b: &[f64], r: &mut [f64]| -> f64 {
        match prob.residuals(b, r) {
            Ok(()) => r.iter().map(|v| v * v).sum(),
            Err(_) => f64::INFINITY,
        }
    };
    let mut cur = start.to_vec();
    let mut cur_loss = loss(&mut prob, &cur, &mut r);
    if !cur_loss.is_finite() {
        return Err(FitError::NonFiniteAtStart(crate::model::ModelError::new("the reduced loss is not finite at the start")));
    }
    let mut path = DescentPath { points: vec![cur.clone()], losses: vec![cur_loss], stopped: String::new() };
    let steps: Vec<f64> = (0..100).map(|i| max_step * 10f64.powf(-2.0 + 2.001 * i as f64 / 99.0)).collect();
    let mut trial = vec![0.0; q];
    for _ in 0..iterations {
        // Gradient at the current point: 2 Jᵀ r (residuals recomputed at `cur`).
        loss(&mut prob, &cur, &mut r);
        if prob.jacobian(&cur, &mut jac).is_err() {
            path.stopped = "the Jacobian could not be evaluated".into();
            return Ok(path);
        }
        let g: Vec<f64> = (0..q).map(|k| 2.0 * (0..n).map(|i| jac[k * n + i] * r[i]).sum::<f64>()).collect();
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if !(norm > 0.0) || !norm.is_finite() {
            path.stopped = "zero or non-finite gradient".into();
            return Ok(path);
        }
        let mut best: Option<(f64, Vec<f64>)> = None;
        for &s in &steps {
            for k in 0..q {
                trial[k] = cur[k] - s * g[k] / norm;
            }
            let l = loss(&mut prob, &trial, &mut r);
            if l < best.as_ref().map_or(cur_loss, |b| b.0) {
                best = Some((l, trial.clone()));
            }
        }
        match best {
            Some((l, b)) => {
                cur = b;
                cur_loss = l;
                path.points.push(cur.clone());
                path.losses.push(cur_loss);
            }
            None => {
                path.stopped = "no step length lowers the loss".into();
                return Ok(path);
            }
        }
    }
    path.stopped = format!("iteration limit ({iterations})");
    Ok(path)
}
