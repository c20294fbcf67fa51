# Vivado batch build of the resilq overlay: project, block design, synthesis, implementation, bitstream,
# and the matching .bit/.hwh pair in the output folder (pynq loads <name>.bit with <name>.hwh beside it).
#
#   vivado -mode batch -source build_overlay.tcl -tclargs params=<build dir>/overlay_params.tcl
#
# `python -m resilq.overlays build` (and `make -C overlays`) writes the parameter file and runs this.
set here [file dirname [file normalize [info script]]]
source [file join $here args.tcl]
source [file join $here block_design.tcl]

set p [::resilq::overlay::load_params $argv]
set design [dict get $p design]
set build_dir [dict get $p build_dir]
set out_dir [dict get $p out_dir]

set have [version -short]
if {![string match "[dict get $p vivado_version]*" $have]} {
    error "resilq: this is Vivado $have; the overlay is built with Vivado [dict get $p vivado_version] (the board file's \[software\] vivado)"
}
create_project -force $design [file join $build_dir vivado] -part [dict get $p part]
if {[llength [get_board_parts -quiet [dict get $p board_part]]] == 0} {
    error "resilq: board part [dict get $p board_part] is not installed: copy the board's Vivado board files into <Vivado>/data/boards/board_files"
}
set_property board_part [dict get $p board_part] [current_project]
set_property ip_repo_paths [list [dict get $p ip_repo]] [current_project]
update_ip_catalog
if {[llength [get_ipdefs -quiet [dict get $p ip_vlnv]]] == 0} {
    error "resilq: IP [dict get $p ip_vlnv] is not in [dict get $p ip_repo]: run make -C hls ip first"
}

::resilq::overlay::create_design $p
set bd [get_files $design.bd]
generate_target all $bd
set wrapper [make_wrapper -files $bd -top]
add_files -norecurse $wrapper
set_property top ${design}_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs [dict get $p jobs]
wait_on_run synth_1
if {[get_property PROGRESS [get_runs synth_1]] ne "100%"} {
    error "resilq: synthesis failed; see [get_property DIRECTORY [get_runs synth_1]]/runme.log"
}
launch_runs impl_1 -to_step write_bitstream -jobs [dict get $p jobs]
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "resilq: implementation failed; see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
}

set bit [glob -nocomplain [file join [get_property DIRECTORY [get_runs impl_1]] *.bit]]
set hwh [glob -nocomplain [file join $build_dir vivado $design.gen sources_1 bd $design hw_handoff $design.hwh]]
if {[llength $bit] != 1 || [llength $hwh] != 1} {
    error "resilq: expected one bitstream and one hardware handoff, found '$bit' and '$hwh'"
}
file mkdir $out_dir
file copy -force [lindex $bit 0] [file join $out_dir $design.bit]
file copy -force [lindex $hwh 0] [file join $out_dir $design.hwh]
puts "resilq: wrote [file join $out_dir $design.bit] and [file join $out_dir $design.hwh]"
