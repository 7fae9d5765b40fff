# R's selfStart datasets and the optimum nls reaches on them, for sepfit's "no starting
# values" tests (crates/sepfit/tests/selfstart.rs). Writes data/selfstart/<name>.csv and
# data/reference/selfstart_nls.json.
#
#   Rscript scripts/make_selfstart_reference.R
#
# Each model is fitted with R's self-starting model (which computes its own starts), then the
# formula sepfit is given is the same model written out.
out_dir <- "data/selfstart"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
cases <- list(
  list(name = "puromycin_treated", data = subset(Puromycin, state == "treated")[, c("conc", "rate")],
       r = rate ~ SSmicmen(conc, Vm, K), sepfit = "rate ~ Vm*conc/(K + conc)"),
  list(name = "puromycin_untreated", data = subset(Puromycin, state == "untreated")[, c("conc", "rate")],
       r = rate ~ SSmicmen(conc, Vm, K), sepfit = "rate ~ Vm*conc/(K + conc)"),
  list(name = "bod", data = BOD[, c("Time", "demand")],
       r = demand ~ SSasympOrig(Time, A, lrc), sepfit = "demand ~ A*(1 - exp(-exp(lrc)*Time))"),
  list(name = "dnase1", data = transform(subset(DNase, Run == 1)[, c("conc", "density")]),
       r = density ~ SSlogis(log(conc), Asym, xmid, scal), sepfit = "density ~ Asym/(1 + exp((xmid - log(conc))/scal))"),
  list(name = "chickweight1", data = subset(ChickWeight, Chick == 1)[, c("Time", "weight")],
       r = weight ~ SSlogis(Time, Asym, xmid, scal), sepfit = "weight ~ Asym/(1 + exp((xmid - Time)/scal))"),
  list(name = "loblolly329", data = subset(Loblolly, Seed == 329)[, c("age", "height")],
       r = height ~ SSasymp(age, Asym, R0, lrc), sepfit = "height ~ Asym + (R0 - Asym)*exp(-exp(lrc)*age)"),
  list(name = "indometh1", data = subset(Indometh, Subject == 1)[, c("time", "conc")],
       r = conc ~ SSbiexp(time, A1, lrc1, A2, lrc2), sepfit = "conc ~ A1*exp(-exp(lrc1)*time) + A2*exp(-exp(lrc2)*time)"),
  list(name = "orange1", data = subset(Orange, Tree == 1)[, c("age", "circumference")],
       r = circumference ~ SSlogis(age, Asym, xmid, scal), sepfit = "circumference ~ Asym/(1 + exp((xmid - age)/scal))")
)
num <- function(x) formatC(x, digits = 17, format = "g")
entries <- character(0)
for (cs in cases) {
  d <- as.data.frame(lapply(cs$data, as.numeric))
  write.csv(d, file.path(out_dir, paste0(cs$name, ".csv")), row.names = FALSE, quote = FALSE)
  fit <- nls(cs$r, data = d)
  # Refined from R's own optimum with a tight tolerance, so the reference is converged.
  fit <- tryCatch(nls(cs$r, data = d, start = as.list(coef(fit)), control = nls.control(tol = 1e-9, maxiter = 200)),
                  error = function(e) fit)
  co <- coef(fit)
  params <- paste(sprintf('"%s": %s', names(co), num(co)), collapse = ", ")
  entries <- c(entries, sprintf('  "%s": {"formula": "%s", "rss": %s, "params": {%s}}',
                                cs$name, cs$sepfit, num(deviance(fit)), params))
}
writeLines(c("{", paste(entries, collapse = ",\n"), "}"), "data/reference/selfstart_nls.json")
cat(sprintf("R %s: wrote %d datasets\n", getRversion(), length(cases)))
