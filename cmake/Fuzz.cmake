# LETHE_FUZZ=ON: a build of the libFuzzer harnesses of the parsers of untrusted files
# (tests/fuzz), and nothing else. scripts/fuzz.sh configures it with clang into build-fuzz/:
#
#   cmake -S . -B build-fuzz -DLETHE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
#
# The parsers' sources are compiled again here with the fuzzer's coverage instrumentation and
# ASan + UBSan. UBSan is built recoverable but halts on every report (fuzz_util.h sets
# halt_on_error), so libFuzzer keeps the input, and a long run can suppress an open finding.
# Only the pickle harness needs libtorch (the zip reader and at::Tensor); LETHE_FUZZ_TORCH=OFF
# leaves it out.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "LETHE_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
endif()
option(LETHE_FUZZ_TORCH "Build the pytorch_model.bin unpickler's harness (links libtorch)" ON)

find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(ICU REQUIRED COMPONENTS uc i18n)

set(LETHE_FUZZ_SANITIZE -fsanitize=address,undefined -fsanitize-recover=undefined -fno-omit-frame-pointer -g)
set(core ${PROJECT_SOURCE_DIR}/core)

# What the harnesses reach, as lethe_base builds it, plus spec.cpp (torch-free, in lethe_core).
add_library(lethe_fuzz_base STATIC
  ${core}/data/datasets.cpp
  ${core}/data/prompt_format.cpp
  ${core}/data/sources.cpp
  ${core}/experiment/spec.cpp
  ${core}/io/csv.cpp
  ${core}/io/hf_folder.cpp
  ${core}/io/json.cpp
  ${core}/io/jsonl.cpp
  ${core}/io/safetensors.cpp
  ${core}/model/llama_config.cpp
  ${core}/model/model_config.cpp
  ${core}/model/opt_config.cpp
  ${core}/text/bpe_tokenizer.cpp
  ${core}/text/chat_template.cpp
  ${core}/text/hf_auto.cpp
  ${core}/text/hf_bpe.cpp
  ${core}/text/hf_pipeline.cpp
  ${core}/text/hf_regex.cpp
  ${core}/text/hf_tokenizer.cpp
  ${core}/text/spm_model.cpp
  ${core}/text/unicode.cpp
  ${core}/unlearn/options.cpp
  ${core}/util/paths.cpp
)
target_include_directories(lethe_fuzz_base PUBLIC ${core})
target_compile_options(lethe_fuzz_base PUBLIC ${LETHE_FUZZ_SANITIZE} PRIVATE -fsanitize=fuzzer-no-link)
target_link_options(lethe_fuzz_base PUBLIC -fsanitize=address,undefined)
target_link_libraries(lethe_fuzz_base PUBLIC nlohmann_json::nlohmann_json Threads::Threads PRIVATE ICU::uc ICU::i18n)
lethe_warnings(lethe_fuzz_base)

set(LETHE_FUZZERS safetensors shard_index model_config hf_tokenizer bpe_vocab spm_model chat_template jsonl csv spec)
if(LETHE_FUZZ_TORCH)
  find_package(Torch REQUIRED)
  add_library(lethe_fuzz_torch STATIC ${core}/io/torch_pickle.cpp)
  target_compile_options(lethe_fuzz_torch PRIVATE ${TORCH_CXX_FLAGS} -fsanitize=fuzzer-no-link)
  target_link_libraries(lethe_fuzz_torch PUBLIC lethe_fuzz_base ${TORCH_LIBRARIES})
  lethe_warnings(lethe_fuzz_torch)
  list(APPEND LETHE_FUZZERS torch_pickle)
endif()

foreach(name ${LETHE_FUZZERS})
  add_executable(fuzz_${name} ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${name}.cpp)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  if(name STREQUAL "torch_pickle")
    target_link_libraries(fuzz_${name} PRIVATE lethe_fuzz_torch)
  else()
    target_link_libraries(fuzz_${name} PRIVATE lethe_fuzz_base)
  endif()
  lethe_warnings(fuzz_${name})
endforeach()
