#pragma once
// qcustomplot.h uses Qt's keyword macros (signals, slots, foreach, emit), which lethe_ui turns
// off with QT_NO_KEYWORDS because libtorch has members called `slots`. Include QCustomPlot
// through this header only, and never in a file that also includes torch.
#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach
