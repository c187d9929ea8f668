#pragma once
// Table of a model's tensors (name, dtype, shape, parameters, file) for the Model panel.
#include <QAbstractTableModel>
#include <vector>

#include "model/inspect.h"

namespace lethe::ui {

class TensorTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { Name, DType, Shape, Params, File, ColumnCount };
  explicit TensorTableModel(QObject* parent = nullptr);
  void setTensors(std::vector<model::TensorRow> rows);

  int rowCount(const QModelIndex& parent = {}) const override;
  int columnCount(const QModelIndex& parent = {}) const override;
  QVariant data(const QModelIndex& index, int role) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

 private:
  std::vector<model::TensorRow> rows_;
};

}  // namespace lethe::ui
