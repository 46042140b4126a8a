# Registers one CTest test per Catch2 test case, with several LABELS. (Catch2 v2's
# catch_discover_tests writes LABELS a;b unquoted, so CTest keeps only the first.) A test
# case tagged [threads] (it starts threads) also gets the label `threads`, which selects
# the ThreadSanitizer stage (scripts/test). A test case that calls SKIP_TEST exits 77.
#
# catch_tests_by_tag(TARGET <target> TAG <catch tag> PREFIX <name prefix> LABELS <l1;l2> TIMEOUT <s>)
function(catch_tests_by_tag)
  cmake_parse_arguments(ARG "" "TARGET;TAG;PREFIX;TIMEOUT" "LABELS" ${ARGN})
  string(MAKE_C_IDENTIFIER "${ARG_TARGET}_${ARG_TAG}" id)
  set(script "${CMAKE_CURRENT_BINARY_DIR}/${id}_tests.cmake")
  file(GENERATE OUTPUT "${script}" CONTENT "
execute_process(COMMAND \"$<TARGET_FILE:${ARG_TARGET}>\" \"${ARG_TAG}\" --list-test-names-only
                OUTPUT_VARIABLE names RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 AND NOT rc GREATER 0)
  message(WARNING \"cannot list tests of ${ARG_TARGET}\")
endif()
if(names MATCHES \";\")
  # CMake lists split on ';': such a name would register as two tests that match nothing.
  add_test(\"${ARG_PREFIX}test names must not contain semicolons\" \"\${CMAKE_COMMAND}\" -E false)
  string(REPLACE \";\" \",\" names \"\${names}\")
endif()
string(REPLACE \"\\n\" \";\" names \"\${names}\")
execute_process(COMMAND \"$<TARGET_FILE:${ARG_TARGET}>\" \"[threads]\" --list-test-names-only
                OUTPUT_VARIABLE threaded)
string(REPLACE \";\" \",\" threaded \"\\n\${threaded}\")
foreach(name IN LISTS names)
  if(name STREQUAL \"\")
    continue()
  endif()
  string(REPLACE \",\" \"\\\\,\" spec \"\${name}\")  # a comma separates Catch test specs
  string(REPLACE \"[\" \"\\\\[\" spec \"\${spec}\")
  # --warn NoTests: a name that matches no test case must fail, never pass vacuously.
  add_test(\"${ARG_PREFIX}\${name}\" \"$<TARGET_FILE:${ARG_TARGET}>\" --warn NoTests \"\${spec}\")
  set(labels \"${ARG_LABELS}\")
  string(FIND \"\${threaded}\" \"\\n\${name}\\n\" at)  # a line of its own in the [threads] listing
  if(NOT at EQUAL -1)
    list(APPEND labels threads)
  endif()
  set_tests_properties(\"${ARG_PREFIX}\${name}\" PROPERTIES LABELS \"\${labels}\" TIMEOUT ${ARG_TIMEOUT}
                      SKIP_RETURN_CODE 77)  # SKIP_TEST (tests/support/skip.h)
endforeach()
")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
endfunction()
