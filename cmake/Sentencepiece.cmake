# sentencepiece, built static against the system protobuf by scripts/build_sentencepiece.sh
# (Debian's libsentencepiece carries its own protobuf and crashes processes that load libtorch).
set(LETHE_SPM_ROOT "${CMAKE_CURRENT_SOURCE_DIR}/third_party/spm" CACHE PATH "static sentencepiece prefix")
find_library(LETHE_SPM_LIB NAMES libsentencepiece.a PATHS ${LETHE_SPM_ROOT}/lib NO_DEFAULT_PATH)
find_library(LETHE_SPM_TRAIN_LIB NAMES libsentencepiece_train.a PATHS ${LETHE_SPM_ROOT}/lib NO_DEFAULT_PATH)
if(NOT LETHE_SPM_LIB OR NOT LETHE_SPM_TRAIN_LIB)
  message(FATAL_ERROR "static sentencepiece not found under ${LETHE_SPM_ROOT}; run scripts/setup.sh (or scripts/build_sentencepiece.sh)")
endif()
find_package(Protobuf REQUIRED)
# The library file itself, not the protobuf::libprotobuf target: PyPI's libtorch config defines
# that target as an empty placeholder before we get here.
find_library(LETHE_PROTOBUF_LIB NAMES protobuf REQUIRED)
add_library(lethe_sentencepiece INTERFACE)
target_include_directories(lethe_sentencepiece SYSTEM INTERFACE ${LETHE_SPM_ROOT}/include)
# train first: it depends on the encoder library.
target_link_libraries(lethe_sentencepiece INTERFACE ${LETHE_SPM_TRAIN_LIB} ${LETHE_SPM_LIB} ${LETHE_PROTOBUF_LIB} Threads::Threads)
