# Shared build settings: one INTERFACE target carries the language standard and
# warnings; troupe_component() declares a folder's library and its unit tests.
# cmake/troupePackage.cmake (included below, and installed) builds packages.

include(GNUInstallDirs)

add_library(troupe_options INTERFACE)
target_compile_features(troupe_options INTERFACE cxx_std_20)
target_compile_options(troupe_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
target_include_directories(troupe_options INTERFACE
  ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR})
# Boost.Asio defaults that keep compile time and binary size down.
target_compile_definitions(troupe_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_BOOST_REGEX)

# Catch2 main compiled once, shared by every unit-test binary.
if(TROUPE_BUILD_TESTS)
  add_library(troupe_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp)
  target_link_libraries(troupe_catch_main PUBLIC Catch2::Catch2 troupe_options)
endif()

# troupe_component(NAME SOURCES ... [DEPS ...] [TESTS ...])
#   Builds static library troupe_NAME from SOURCES, linked to DEPS, and one test
#   binary NAME_tests from TESTS registered with ctest under the label "unit".
function(troupe_component name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;TESTS" ${ARGN})
  add_library(troupe_${name} STATIC ${arg_SOURCES})
  target_link_libraries(troupe_${name} PUBLIC troupe_options ${arg_DEPS})
  if(arg_TESTS AND TROUPE_BUILD_TESTS)
    add_executable(${name}_tests ${arg_TESTS})
    target_link_libraries(${name}_tests PRIVATE troupe_${name} troupe_catch_main)
    add_test(NAME ${name}_tests COMMAND ${name}_tests)
    set_tests_properties(${name}_tests PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endfunction()

# The actor SDK (include/troupe/, header-only), as an outside project sees it
# after find_package(troupe): troupe::sdk. The same target serves this tree.
add_library(troupe_sdk INTERFACE)
add_library(troupe::sdk ALIAS troupe_sdk)
set_target_properties(troupe_sdk PROPERTIES EXPORT_NAME sdk)
target_compile_features(troupe_sdk INTERFACE cxx_std_20)
target_include_directories(troupe_sdk INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                                                $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(troupe_sdk INTERFACE nlohmann_json::nlohmann_json)

# troupe_package() and troupe_signed_package(), installed for outside projects
# too. Packages of this tree also get its warnings and include paths.
set(TROUPE_PACKAGE_LINK troupe_options)
include(${CMAKE_CURRENT_LIST_DIR}/troupePackage.cmake)
