#pragma once
// The workbench's plots drawn in the palette's colours (background, axes, ticks, labels, a dotted
// grid), so the dark palette stays as readable as the light one. Every QCustomPlot of the ui uses it.
class QCustomPlot;
class QPalette;

namespace lethe::ui {

void applyPlotPalette(QCustomPlot* plot, const QPalette& pal);

}  // namespace lethe::ui
