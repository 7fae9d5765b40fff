#!/usr/bin/env Rscript
# Reproduce the data-generating process of seed 000 (the Cross Validated question
# "derivative of the projection ... variables separate", /work/shared/seeds/000_*.txt)
# with a fixed RNG seed, and write data/seed000.csv.
#
#   Rscript scripts/seed000_data.R            (run from the repository root)
#
# x1, x2, t1, t2 are written with 17 significant digits (round-trip exact for doubles);
# y is written as generated, i.e. rounded to 3 decimals by the seed's own code.
set.seed(2024)
x1 <- runif(10, 0, 1)
x2 <- runif(10, 0, 0.1) + x1 * 0.9
t1 <- log(x1)
t2 <- log(x2)
y <- round(1 * exp(0.4 * t1) - 0.5 * exp(0.6 * t2) + rnorm(10, 0, 0.01), 3)

fmt17 <- function(v) trimws(formatC(v, digits = 17, format = "g"))
out <- data.frame(x1 = fmt17(x1), x2 = fmt17(x2), t1 = fmt17(t1), t2 = fmt17(t2),
                  y = format(y, digits = 15, trim = TRUE, scientific = FALSE))
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[1] else "data/seed000.csv"
write.table(out, path, sep = ",", quote = FALSE, row.names = FALSE)
cat("wrote", path, "\n")
