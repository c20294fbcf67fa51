# Parameters of the overlay build: load the generated parameter script and validate it. Plain Tcl 8.6
# (no Vivado commands), so the test suite runs it with tclsh.
#
#   vivado -mode batch -source build_overlay.tcl -tclargs params=<build dir>/overlay_params.tcl
#
# The parameter script is written by `python -m resilq.overlays params|build` from the board file and the
# register map (resilq/overlays/params.py); every key below is one field of its OverlayParams.
namespace eval ::resilq::overlay {
    variable keys {board part board_part vivado_version release_first release_last_year design pl_mhz pl_clock_index
                   lite_port_index lite_base lite_range hp_port_index hp_width ddr_range ip_vlnv ip_instance
                   lite_interface masters ps7_mode ps7_config ip_repo out_dir build_dir jobs}
}

# {params=FILE} -> the validated parameter dict. Errors name the bad argument or value.
proc ::resilq::overlay::load_params {words} {
    set file ""
    foreach word $words {
        if {![regexp {^params=(.+)$} $word -> file]} {
            error "resilq: unknown argument '$word' (expected params=FILE)"
        }
    }
    if {$file eq ""} {
        error "resilq: missing argument params=FILE (written by `python -m resilq.overlays params`)"
    }
    if {![file readable $file]} {
        error "resilq: parameter file '$file' cannot be read"
    }
    variable params
    set params [dict create]
    source $file
    return [validate $params]
}

proc ::resilq::overlay::validate {p} {
    variable keys
    foreach key $keys {
        if {![dict exists $p $key]} {
            error "resilq: parameter '$key' is missing"
        }
    }
    foreach key {part board_part design ip_instance lite_interface ip_repo out_dir build_dir} {
        if {[dict get $p $key] eq ""} {
            error "resilq: parameter '$key' must not be empty"
        }
    }
    foreach key {vivado_version release_first} {
        if {![regexp {^[0-9]{4}\.[0-9]+$} [dict get $p $key]]} {
            error "resilq: $key must look like 2022.1, got '[dict get $p $key]'"
        }
    }
    if {![regexp {^[0-9]{4}$} [dict get $p release_last_year]]} {
        error "resilq: release_last_year must be a year like 2024, got '[dict get $p release_last_year]'"
    }
    if {[dict get $p ps7_mode] ni {explicit board-preset}} {
        error "resilq: ps7_mode must be explicit or board-preset, got '[dict get $p ps7_mode]'"
    }
    set ps7 [dict get $p ps7_config]
    if {[llength $ps7] % 2 != 0} {
        error "resilq: ps7_config must be PCW_* name/value pairs, got [llength $ps7] words"
    }
    foreach {name value} $ps7 {
        if {![regexp {^PCW_[A-Z0-9_]+$} $name]} {
            error "resilq: ps7_config: '$name' is not a PCW_* property of processing_system7"
        }
    }
    if {[dict get $p ps7_mode] eq "explicit" && [llength $ps7] == 0} {
        error "resilq: ps7_mode explicit needs the PS7 properties (ps7_config is empty)"
    }
    if {![string is double -strict [dict get $p pl_mhz]] || [dict get $p pl_mhz] <= 0} {
        error "resilq: pl_mhz must be a positive number, got '[dict get $p pl_mhz]'"
    }
    foreach {key lo hi} {pl_clock_index 0 3 lite_port_index 0 1 hp_port_index 0 3} {
        set v [dict get $p $key]
        if {![string is integer -strict $v] || $v < $lo || $v > $hi} {
            error "resilq: $key must be an integer in $lo..$hi, got '$v'"
        }
    }
    if {[dict get $p hp_width] ni {32 64}} {
        error "resilq: hp_width must be 32 or 64 (Zynq-7000 HP ports), got '[dict get $p hp_width]'"
    }
    set base [dict get $p lite_base]
    if {![string is wideinteger -strict $base] || $base < 0x40000000 || $base > 0x7FFFFFFF} {
        error "resilq: lite_base must lie in M_AXI_GP's range 0x40000000-0x7FFFFFFF, got '$base'"
    }
    foreach key {lite_range ddr_range} {
        if {![regexp {^[0-9]+[KMG]?$} [dict get $p $key]]} {
            error "resilq: $key must be a size like 64K or 512M, got '[dict get $p $key]'"
        }
    }
    set parts [split [dict get $p ip_vlnv] :]
    if {[llength $parts] != 4 || "" in $parts} {
        error "resilq: ip_vlnv must be vendor:library:name:version, got '[dict get $p ip_vlnv]'"
    }
    if {[llength [dict get $p masters]] < 1 || [llength [dict get $p masters]] > 16} {
        error "resilq: masters must list 1..16 m_axi ports, got '[dict get $p masters]'"
    }
    if {![string is integer -strict [dict get $p jobs]] || [dict get $p jobs] < 1} {
        error "resilq: jobs must be a positive integer, got '[dict get $p jobs]'"
    }
    return $p
}

# Whether Vivado release $have (as `version -short` prints it: 2022.1, 2023.2.1) is one the flow supports.
proc ::resilq::overlay::release_supported {have p} {
    if {![regexp {^([0-9]{4})\.([0-9]+)} $have -> year minor]} {
        return 0
    }
    if {[package vcompare "$year.$minor" [dict get $p release_first]] < 0} {
        return 0
    }
    return [expr {$year <= [dict get $p release_last_year]}]
}

# The explicit PS7 properties as a set_property -dict list: CONFIG.<name> <value> ...
proc ::resilq::overlay::ps7_properties {p} {
    set props {}
    foreach {name value} [dict get $p ps7_config] {
        lappend props CONFIG.$name $value
    }
    return $props
}

# Post-route timing: an error naming the timing report unless the worst setup (WNS) and hold (WHS) slack are
# numbers >= 0. A bitstream with negative slack misbehaves on the board, so none is copied out.
proc ::resilq::overlay::check_timing {wns whs report} {
    foreach {name value} [list WNS $wns WHS $whs] {
        if {![string is double -strict $value]} {
            error "resilq: post-route $name is '$value', not a number: timing was not analysed; see $report"
        }
    }
    set failed {}
    if {$wns < 0} {
        lappend failed "setup (WNS $wns ns)"
    }
    if {$whs < 0} {
        lappend failed "hold (WHS $whs ns)"
    }
    if {[llength $failed] > 0} {
        error "resilq: the routed design fails timing: [join $failed {, }]; no bitstream is copied out. See the timing report $report"
    }
}

# Port and pin names of the PS7 for the configured indices.
proc ::resilq::overlay::ps_names {p} {
    set clk [dict get $p pl_clock_index]
    set gp [dict get $p lite_port_index]
    set hp [dict get $p hp_port_index]
    return [dict create \
        fclk FCLK_CLK$clk fclk_reset FCLK_RESET${clk}_N fclk_freq CONFIG.PCW_FPGA${clk}_PERIPHERAL_FREQMHZ \
        gp M_AXI_GP$gp gp_clk M_AXI_GP${gp}_ACLK gp_enable CONFIG.PCW_USE_M_AXI_GP$gp \
        hp S_AXI_HP$hp hp_clk S_AXI_HP${hp}_ACLK hp_enable CONFIG.PCW_USE_S_AXI_HP$hp \
        hp_width CONFIG.PCW_S_AXI_HP${hp}_DATA_WIDTH hp_segment HP${hp}_DDR_LOWOCM]
}
