# Vivado batch build of the resilq overlay: project, block design, synthesis, implementation, bitstream, the
# post-route timing check, and the matching .bit/.hwh pair in the output folder (pynq loads <name>.bit with
# <name>.hwh beside it).
#
#   vivado -mode batch -source build_overlay.tcl -tclargs params=<build dir>/overlay_params.tcl
#
# `python -m resilq.overlays build` (and `make -C overlays`) writes the parameter file and runs this, with
# Vivado 2022.1 - 2024.x. Commands and options are UG835's (Vivado Tcl Command Reference); the run
# properties STATS.WNS / STATS.WHS are the implementation run's worst setup / hold slack (UG912, RUN).
# Reports go to <build dir>/reports and the numbers to <build dir>/implementation.txt, which
# resilq.overlays.build turns into the overlay's metadata (resilq.json beside the .bit).
set here [file dirname [file normalize [info script]]]
source [file join $here args.tcl]
source [file join $here block_design.tcl]

set p [::resilq::overlay::load_params $argv]
set design [dict get $p design]
set build_dir [dict get $p build_dir]
set out_dir [dict get $p out_dir]

set have [version -short]
if {![::resilq::overlay::release_supported $have $p]} {
    puts "resilq: WARNING: this is Vivado $have; the overlay flow is written and checked for\
[dict get $p release_first] - [dict get $p release_last_year].x (the board image's overlays use\
[dict get $p vivado_version]). It may work; send the log if a command fails."
}
create_project -force $design [file join $build_dir vivado] -part [dict get $p part]
if {[dict get $p ps7_mode] eq "board-preset"} {
    if {[llength [get_board_parts -quiet [dict get $p board_part]]] == 0} {
        error "resilq: board part [dict get $p board_part] is not installed: copy the board's Vivado board files into\
<Vivado>/data/boards/board_files, or build with PS7=explicit (the default: only the part is needed)"
    }
    set_property board_part [dict get $p board_part] [current_project]
}
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

# post-route timing and utilisation, recorded before the check so a failing build can be reported
open_run impl_1
set reports [file join $build_dir reports]
file mkdir $reports
set timing_report [file join $reports timing_summary.rpt]
set util_report [file join $reports utilization.rpt]
set accel_report [file join $reports utilization_accel.rpt]
report_timing_summary -file $timing_report
report_utilization -file $util_report
set accel [get_cells -quiet -hierarchical [dict get $p ip_instance]]
if {[llength $accel] == 1} {
    report_utilization -cells $accel -file $accel_report
} else {
    puts "resilq: WARNING: found [llength $accel] cells named [dict get $p ip_instance]; no accelerator-only utilisation"
    set accel_report ""
}
set wns [get_property STATS.WNS [get_runs impl_1]]
set whs [get_property STATS.WHS [get_runs impl_1]]
set f [open [file join $build_dir implementation.txt] w]
puts $f "vivado $have"
puts $f "wns $wns"
puts $f "whs $whs"
puts $f "timing_report $timing_report"
puts $f "utilization_report $util_report"
puts $f "accelerator_report $accel_report"
close $f
::resilq::overlay::check_timing $wns $whs $timing_report

set bit [glob -nocomplain [file join [get_property DIRECTORY [get_runs impl_1]] *.bit]]
set hwh [glob -nocomplain [file join $build_dir vivado $design.gen sources_1 bd $design hw_handoff $design.hwh]]
if {[llength $bit] != 1 || [llength $hwh] != 1} {
    error "resilq: expected one bitstream and one hardware handoff, found '$bit' and '$hwh'"
}
file mkdir $out_dir
file copy -force [lindex $bit 0] [file join $out_dir $design.bit]
file copy -force [lindex $hwh 0] [file join $out_dir $design.hwh]
puts "resilq: wrote [file join $out_dir $design.bit] and [file join $out_dir $design.hwh] (WNS $wns ns, WHS $whs ns)"
