#pragma once
// Small RAII wrappers over the sqlite3 C API: a connection, prepared statements with typed
// binds, transactions. Errors throw lethe::Error with SQLite's message and the SQL.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace lethe::store {

class Db {
 public:
  static constexpr int kBusyTimeoutMs = 10000;
  // Opens (creating) the database in WAL mode with a busy timeout, so a reader and the run's
  // writer (or two processes' runs) each use their own connection without "database is locked";
  // a lock held longer than the timeout, a file that is not a database, a full disk end in an
  // Error that says which.
  explicit Db(const std::filesystem::path& path, int busy_timeout_ms = kBusyTimeoutMs);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql);
  int64_t last_insert_id() const;
  sqlite3* handle() const { return db_; }
  const std::filesystem::path& path() const { return path_; }
  // The Error for a failed call that returned `rc`: the path, what it means for a person, SQLite's
  // own message and the statement.
  std::string describe(int rc, const std::string& sqlite_message, const std::string& sql) const;

 private:
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  int busy_timeout_ms_;
};

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<double>& v) { return v ? bind(i, *v) : bind_null(i); }
  // Steps once: true while a row is available.
  bool step();
  // Runs to completion (INSERT/UPDATE/DELETE) and resets for reuse.
  void run();
  void reset();
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;

 private:
  Db& db_;
  sqlite3_stmt* st_ = nullptr;
  std::string sql_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed without commit().
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace lethe::store
