// Text is text (#16): files of texts are read line for line, blank lines and quotes kept; JSONL
// only by extension or when asked; binary bytes refused naming the file and line.
#include <gtest/gtest.h>

#include "io/jsonl.h"
#include "support/tiny_opt.h"
#include "util/error.h"

using namespace lethe;
using lethe::testing::error_of;
using lethe::testing::TempDir;
using lethe::testing::write_text;
using Strings = std::vector<std::string>;

TEST(TextInput, PlainLinesAreReadAsWritten) {
  TempDir d;
  write_text(d / "in.txt", "Hello world\n\n\"quoted\"\n{\"text\": \"x\"}\n  padded \t\n");
  EXPECT_EQ(io::read_texts(d / "in.txt", "text"), (Strings{"Hello world", "", "\"quoted\"", "{\"text\": \"x\"}", "  padded \t"}));
  const auto lines = io::read_text_lines(d / "in.txt", "text");
  ASSERT_EQ(lines.size(), 5u);
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i].line, static_cast<int>(i + 1));
}

TEST(TextInput, OnlyATrailingCarriageReturnIsRemovedAndTheLastNewlineAddsNoText) {
  TempDir d;
  write_text(d / "crlf.txt", "a\r\nb\rc\r\n\r\n");
  EXPECT_EQ(io::read_texts(d / "crlf.txt", "text"), (Strings{"a", "b\rc", ""}));
  write_text(d / "open.txt", "last line without a newline");
  EXPECT_EQ(io::read_texts(d / "open.txt", "text"), (Strings{"last line without a newline"}));
  write_text(d / "blank.txt", "\n\n");
  EXPECT_EQ(io::read_texts(d / "blank.txt", "text"), (Strings{"", ""}));
  write_text(d / "empty.txt", "");
  EXPECT_TRUE(io::read_texts(d / "empty.txt", "text").empty());
}

TEST(TextInput, JsonlByExtensionOrWhenAsked) {
  TempDir d;
  const std::string jsonl = "{\"text\": \"a\"}\n\n{\"text\": \"\", \"other\": 1}\n";
  write_text(d / "t.jsonl", jsonl);
  write_text(d / "t.JSONL", jsonl);
  write_text(d / "t.txt", jsonl);
  write_text(d / "t.json", jsonl);
  EXPECT_EQ(io::read_texts(d / "t.jsonl", "text"), (Strings{"a", ""}));
  EXPECT_EQ(io::read_texts(d / "t.JSONL", "text"), (Strings{"a", ""}));
  EXPECT_EQ(io::read_texts(d / "t.txt", "text", io::TextFormat::Jsonl), (Strings{"a", ""}));
  // Anything else is plain text, .json included: the lines as written.
  EXPECT_EQ(io::read_texts(d / "t.txt", "text"), (Strings{"{\"text\": \"a\"}", "", "{\"text\": \"\", \"other\": 1}"}));
  EXPECT_EQ(io::read_texts(d / "t.json", "text").size(), 3u);
  EXPECT_EQ(io::read_texts(d / "t.jsonl", "text", io::TextFormat::Lines).size(), 3u);
  const auto lines = io::read_text_lines(d / "t.jsonl", "text");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].line, 3);  // the blank line is skipped, not renumbered
}

TEST(TextInput, FormatNames) {
  EXPECT_EQ(io::parse_text_format("auto"), io::TextFormat::Auto);
  EXPECT_EQ(io::parse_text_format("lines"), io::TextFormat::Lines);
  EXPECT_EQ(io::parse_text_format("jsonl"), io::TextFormat::Jsonl);
  EXPECT_EQ(error_of([] { io::parse_text_format("csv"); }), "input format 'csv': expected auto, lines or jsonl");
  EXPECT_EQ(io::resolve_text_format("-", io::TextFormat::Auto), io::TextFormat::Lines);
  EXPECT_EQ(io::resolve_text_format("-", io::TextFormat::Jsonl), io::TextFormat::Jsonl);
}

TEST(TextInputBadInput, EveryJsonlLineIsAnObjectWithTheStringField) {
  TempDir d;
  const std::string f = (d / "p.jsonl").string();
  write_text(d / "p.jsonl", "{\"prompt\": \"ok\"}\n\"a bare string\"\n");
  EXPECT_EQ(error_of([&] { io::read_texts(f, "prompt"); }),
            f + " line 2: expected a JSON object with a string field 'prompt', got a string");
  write_text(d / "p.jsonl", "\n{\"text\": \"wrong field\"}\n");
  EXPECT_EQ(error_of([&] { io::read_texts(f, "prompt"); }), f + " line 2: missing string field 'prompt'");
  write_text(d / "p.jsonl", "{\"prompt\": 3}\n");
  EXPECT_EQ(error_of([&] { io::read_texts(f, "prompt"); }), f + " line 1: field 'prompt' must be a string, got a number");
  write_text(d / "p.jsonl", "[1, 2]\n");
  EXPECT_EQ(error_of([&] { io::read_texts(f, "prompt"); }),
            f + " line 1: expected a JSON object with a string field 'prompt', got a list");
  write_text(d / "p.jsonl", "{\"prompt\": \"unterminated}\n");
  EXPECT_NE(error_of([&] { io::read_texts(f, "prompt"); }).find(f + " line 1: invalid JSON: "), std::string::npos);
}

TEST(TextInputBadInput, MissingFileAndFolder) {
  TempDir d;
  EXPECT_EQ(error_of([&] { io::read_texts(d / "nope.txt", "text"); }), (d / "nope.txt").string() + ": no such file");
  EXPECT_EQ(error_of([&] { io::read_texts(d.path, "text"); }), d.path.string() + ": is a folder (expected a text file)");
}

TEST(TextInputBadInput, BinaryBytesAreNotText) {
  TempDir d;
  write_text(d / "nul.txt", std::string("fine\nab\0cd\n", 11));
  EXPECT_EQ(error_of([&] { io::read_texts(d / "nul.txt", "text"); }),
            (d / "nul.txt").string() + " line 2: not text: a NUL byte at column 3 (a binary file? expected UTF-8 text)");
  write_text(d / "latin1.txt", "caf\xe9\n");
  EXPECT_EQ(error_of([&] { io::read_texts(d / "latin1.txt", "text"); }),
            (d / "latin1.txt").string() +
                " line 1: not text: byte 0xe9 at column 4 is not UTF-8 (a binary file, or another encoding?)");
  write_text(d / "bin.jsonl", "{\"text\": \"a\"}\n\xff\xfe{}\n");
  EXPECT_NE(error_of([&] { io::read_texts(d / "bin.jsonl", "text"); }).find(" line 2: not text: byte 0xff at column 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { io::for_each_jsonl(d / "bin.jsonl", [](const io::Json&, int) {}); }).find(" line 2: not text"),
            std::string::npos);
}

TEST(TextInput, CheckTextAcceptsUtf8AndRefusesMalformedSequences) {
  EXPECT_EQ(error_of([] { io::check_text("naïve — 東京 🙂\nline two\n", "s"); }), "no error");
  EXPECT_EQ(error_of([] { io::check_text("ok\n\xc0\x80", "s"); }),  // an overlong NUL
            "s line 2: not text: byte 0xc0 at column 1 is not UTF-8 (a binary file, or another encoding?)");
  EXPECT_EQ(error_of([] { io::check_text("\xed\xa0\x80", "s"); }),  // a UTF-16 surrogate
            "s line 1: not text: byte 0xed at column 1 is not UTF-8 (a binary file, or another encoding?)");
  EXPECT_EQ(error_of([] { io::check_text("cut \xe6\x9d", "s", 7); }),  // truncated at the end
            "s line 7: not text: byte 0xe6 at column 5 is not UTF-8 (a binary file, or another encoding?)");
}

TEST(PromptSet, BlankPromptsAreRefusedAndAnAllBlankFileIsEmpty) {
  TempDir d;
  write_text(d / "p.txt", "first\n\"second\"\n");
  EXPECT_EQ(io::read_prompt_set(d / "p.txt", "prompt"), (Strings{"first", "\"second\""}));
  write_text(d / "gap.txt", "first\n\nthird\n");
  EXPECT_EQ(error_of([&] { io::read_prompt_set(d / "gap.txt", "prompt"); }),
            (d / "gap.txt").string() + " line 2: a blank prompt (a prompt set holds one prompt per line; remove the blank line)");
  write_text(d / "blank.txt", "\n \n");
  EXPECT_TRUE(io::read_prompt_set(d / "blank.txt", "prompt").empty());
  write_text(d / "p.jsonl", "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\"}\n");
  EXPECT_EQ(io::read_prompt_set(d / "p.jsonl", "prompt"), (Strings{"a", "b"}));
}
