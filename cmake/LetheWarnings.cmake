# Target-scoped warnings; call lethe_warnings(target) on every first-party target.
function(lethe_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
