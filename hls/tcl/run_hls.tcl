# Vitis HLS flow of the resilq accelerator: C simulation, synthesis, RTL co-simulation, IP export.
#
#   RESILQ_HLS_ARGS=<build dir>/hls_args.txt vitis_hls -f run_hls.tcl
#   RESILQ_HLS_ARGS=<build dir>/hls_args.txt vitis-run --mode hls --tcl run_hls.tcl
#
# The argument file holds key=value lines (part, period, vlnv, src, include, config, vectors, steps; see
# args.tcl). `python -m resilq.hls ip` (and `make -C hls ip`) writes the build directory and calls this
# script with Vitis HLS 2022.1 - 2024.x (resilq.hls.tools). The commands below are UG1399's "Vitis HLS
# Command Reference" (project, solution, configuration and design commands), unchanged over that range.
source [file join [file dirname [info script]] args.tcl]

set cfg [::resilq::parse_args [::resilq::argument_words]]
set src [dict get $cfg src]
set tb [file join [file dirname $src] tb]
set cflags "-std=c++14 -I[dict get $cfg include] -I[dict get $cfg config]"
set vectors [expr {[dict exists $cfg vectors] ? [dict get $cfg vectors] : {}}]
set steps [dict get $cfg steps]

open_project -reset [dict get $cfg project]
set_top [dict get $cfg top]
add_files [file join $src accel_top.cpp] -cflags $cflags
add_files -tb [file join $tb accel_tb.cpp] -cflags $cflags
open_solution -reset [dict get $cfg solution] -flow_target vivado
set_part [dict get $cfg part]
create_clock -period [dict get $cfg period] -name default
# 64-bit pointer registers, as resilq/hls/regmap.py lays them out (the upper word is 0 on Zynq-7000).
config_interface -m_axi_addr64=true

if {"csim" in $steps} {
    csim_design -argv [join $vectors " "]
}
if {"csynth" in $steps || "cosim" in $steps || "export" in $steps} {
    csynth_design
}
if {"cosim" in $steps} {
    cosim_design -argv [join $vectors " "]
}
if {"export" in $steps} {
    export_design -format ip_catalog -vendor [dict get $cfg vendor] -library [dict get $cfg library] \
        -ipname [dict get $cfg ipname] -version [dict get $cfg version] \
        -description "resilq int8 PE-array accelerator with LCU and fault-injection registers"
}
exit
