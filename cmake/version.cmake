# version.cmake: writes OUT, the header that defines BOOKD_VERSION, at every
# build (cmake -P, from the bookd_version target) and once at configure: the
# project's version, and from a git checkout what `git describe` says of it
# now (a tag "vX.Y.Z" as it is, else PROJECT_VERSION + the commit:
# 0.1.0+gabf500f, "-dirty" with local changes); PROJECT_VERSION alone from a
# source tree without git. The file is rewritten only when its text
# changes, so only the few files that print the version are compiled again.
# Inputs: SOURCE_DIR, OUT, PROJECT_VERSION, GIT_EXECUTABLE (may be empty).
set(version "${PROJECT_VERSION}")
if(GIT_EXECUTABLE)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --tags --dirty --always
                  WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE git_describe
                  OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE git_rc ERROR_QUIET)
  if(git_rc EQUAL 0 AND git_describe MATCHES "^v[0-9]")
    string(SUBSTRING "${git_describe}" 1 -1 version)
  elseif(git_rc EQUAL 0 AND git_describe MATCHES "^[0-9a-f]+(-dirty)?$")
    set(version "${PROJECT_VERSION}+g${git_describe}")
  endif()
endif()
set(text "/* Made by cmake/version.cmake at build time: do not edit. */\n#define BOOKD_VERSION \"${version}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
