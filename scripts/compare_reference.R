# Reference values for sepfit's nested-model comparison (crates/sepfit/tests/compare.rs).
#
#   Rscript scripts/compare_reference.R      # from the repository root; base R (stats) only
#
# For each pair of nested models on the same data: fit both with nls (tight tolerance, starts
# given), then write one row per model of anova(small, big) to
# data/reference/compare/anova_R.csv:
#   res_df   residual degrees of freedom n - p           (Res.Df)
#   rss      residual sum of squares (weighted if weights) (Res.Sum Sq)
#   df       p_big - p_small        (second row only)     (Df)
#   sumsq    rss_small - rss_big    (second row only)     (Sum Sq)
#   F        (sumsq/df) / (rss_big/res_df_big)            (F value)
#   p        pf(F, df, res_df_big, lower.tail = FALSE)    (Pr(>F))
# The data are the files of data/reference/intervals/ (written by intervals_reference.R), read
# here so that both scripts and the tests see the same numbers.
dir <- "data/reference/intervals"
out <- "data/reference/compare/anova_R.csv"

gn <- function(form, data, start, weights, tols) {
  for (tol in tols) {
    # do.call hands nls the weights' values (nls looks a bare `weights` up in the formula's
    # environment, where it finds stats::weights).
    args <- list(form, data, start = start, control = nls.control(maxiter = 1000, tol = tol, minFactor = 1e-12))
    if (!is.null(weights)) args$weights <- weights
    fit <- tryCatch(do.call(nls, args), error = function(e) NULL)
    if (!is.null(fit)) return(fit)
  }
  NULL
}

# nls (Gauss-Newton) at the tightest relative-offset tolerance it reaches from the start. Where
# it stalls (BOD with an offset: 3 parameters on 6 points), R's port algorithm (NL2SOL) finds
# the minimum and Gauss-Newton polishes from there at the tightest tolerance down to 1e-6.
tight_nls <- function(form, data, start, weights) {
  fit <- gn(form, data, start, weights, c(1e-10, 1e-9, 1e-8, 1e-7))
  if (!is.null(fit)) return(fit)
  args <- list(form, data, start = start, algorithm = "port")
  if (!is.null(weights)) args$weights <- weights
  port <- do.call(nls, args)
  fit <- gn(form, data, coef(port), weights, c(1e-10, 1e-9, 1e-8, 1e-7, 1e-6))
  if (is.null(fit)) stop("nls did not converge")
  message("  (port, then Gauss-Newton: offset ", signif(fit$convInfo$finTol, 3), ")")
  fit
}

rows <- list()
pair <- function(name, file, small, start_small, big, start_big, weights = NULL) {
  d <- read.csv(file.path(dir, file))
  w <- if (is.null(weights)) NULL else d[[weights]]
  m1 <- tight_nls(small, d, start_small, w)
  m2 <- tight_nls(big, d, start_big, w)
  a <- anova(m1, m2)
  print(a)
  rows[[length(rows) + 1]] <<- data.frame(
    pair = name, model = c(1, 2), res_df = a[["Res.Df"]], rss = a[["Res.Sum Sq"]],
    df = a[["Df"]], sumsq = a[["Sum Sq"]], F = a[["F value"]], p = a[["Pr(>F)"]])
}

pair("puromycin", "puromycin.csv",
     rate ~ Vm * conc / (K + conc), c(Vm = 200, K = 0.05),
     rate ~ Vm * conc / (K + conc) + b * conc, c(Vm = 200, K = 0.05, b = 0))
pair("puromycin_weighted", "puromycin_weighted.csv",
     rate ~ Vm * conc / (K + conc), c(Vm = 200, K = 0.05),
     rate ~ Vm * conc / (K + conc) + b * conc, c(Vm = 200, K = 0.05, b = 0), weights = "w")
pair("bod", "bod.csv",
     demand ~ A * (1 - exp(-exp(lrc) * Time)), c(A = 20, lrc = -1),
     demand ~ A * (1 - exp(-exp(lrc) * Time)) + c0, c(A = 20, lrc = -1, c0 = 0))
pair("dexp1000", "dexp1000.csv",
     y ~ a1 * exp(-t / tau1) + c, c(a1 = 3, tau1 = 1, c = 0.1),
     y ~ a1 * exp(-t / tau1) + a2 * exp(-t / tau2) + c, c(a1 = 1, a2 = 2, tau1 = 0.5, tau2 = 3, c = 0.1))

r <- do.call(rbind, rows)
write.csv(format(r, digits = 17), out, row.names = FALSE, quote = FALSE, na = "NA")
