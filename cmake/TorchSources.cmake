# Which sources include libtorch, and targets built accordingly.
#
# <torch/torch.h> costs ~25 s of CPU in every translation unit that sees it, even from a
# precompiled header (GCC instantiates the same templates in each TU), while half of ellm's
# sources never use torch. So sources are classified by their #include lines — directly, or
# through an ellm header or a local header that includes torch — and:
#   torch sources      get the torch precompiled header and are compiled in unity batches
#                      (the torch cost is paid once per batch);
#   torch-free sources get a small precompiled header (json, spdlog) and unity batches too.
# A misclassified file still compiles (only more slowly): the classification is a speed
# choice, never a correctness one. It is made at configure time.

set(ELLM_UNITY_BATCH 8 CACHE STRING "Sources per unity translation unit (1 turns unity builds off)")

# ON when `file` includes a torch header, directly or through headers it can resolve.
function(ellm_file_uses_torch file out)
  get_property(known GLOBAL PROPERTY "ellm_torch:${file}" SET)
  if(known)
    get_property(value GLOBAL PROPERTY "ellm_torch:${file}")
    set(${out} ${value} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY "ellm_torch:${file}" OFF)  # guards include cycles
  file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  get_filename_component(dir "${file}" DIRECTORY)
  set(result OFF)
  foreach(line IN LISTS includes)
    if(line MATCHES "include[ \t]*[<\"](torch|ATen|c10)/")
      set(result ON)
    elseif(line MATCHES "include[ \t]*[<\"](ellm/[^>\"]+)[>\"]")
      ellm_file_uses_torch("${PROJECT_SOURCE_DIR}/include/${CMAKE_MATCH_1}" result)
    elseif(line MATCHES "include[ \t]*\"([^\"]+)\"")
      if(EXISTS "${dir}/${CMAKE_MATCH_1}")
        ellm_file_uses_torch("${dir}/${CMAKE_MATCH_1}" result)
      elseif(EXISTS "${PROJECT_SOURCE_DIR}/tests/${CMAKE_MATCH_1}")
        ellm_file_uses_torch("${PROJECT_SOURCE_DIR}/tests/${CMAKE_MATCH_1}" result)
      endif()
    endif()
    if(result)
      break()
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY "ellm_torch:${file}" ${result})
  set(${out} ${result} PARENT_SCOPE)
endfunction()

function(ellm_split_by_torch sources torch_out base_out)
  set(torch_sources)
  set(base_sources)
  foreach(src IN LISTS sources)
    ellm_file_uses_torch("${src}" uses)
    if(uses)
      list(APPEND torch_sources "${src}")
    else()
      list(APPEND base_sources "${src}")
    endif()
  endforeach()
  set(${torch_out} ${torch_sources} PARENT_SCOPE)
  set(${base_out} ${base_sources} PARENT_SCOPE)
endfunction()

function(ellm_unity target)
  if(ELLM_UNITY_BATCH GREATER 1)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${ELLM_UNITY_BATCH})
  endif()
endfunction()

# ellm_add_program(NAME EXECUTABLE SOURCES src... LINK lib...): an executable whose torch
# sources reuse ellm_core's precompiled header and whose torch-free sources (an object
# library NAME_torchfree) reuse ellm_base's.
function(ellm_add_program name)
  cmake_parse_arguments(arg "" "" "SOURCES;LINK" ${ARGN})
  ellm_split_by_torch("${arg_SOURCES}" torch_sources base_sources)
  add_executable(${name} ${torch_sources})
  target_link_libraries(${name} PRIVATE ellm_core ${arg_LINK})
  if(torch_sources)
    target_precompile_headers(${name} REUSE_FROM ellm_core)
    ellm_unity(${name})
  endif()
  if(base_sources)
    add_library(${name}_torchfree OBJECT ${base_sources})
    target_link_libraries(${name}_torchfree PRIVATE ellm_base ${arg_LINK})
    target_precompile_headers(${name}_torchfree REUSE_FROM ellm_base)
    ellm_unity(${name}_torchfree)
    target_sources(${name} PRIVATE $<TARGET_OBJECTS:${name}_torchfree>)
  endif()
endfunction()
