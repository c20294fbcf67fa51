# The overlay's block design (Vivado IP integrator): the Zynq PS7 (configured explicitly with the DDR, clock and
# MIO properties of PYNQ's PYNQ-Z2 base design -- ps7_config, from boards/<board>/ps7.toml -- or with the
# board files' preset), the resilq accelerator, AXI-Lite from the PS's general-purpose master, the
# accelerator's AXI masters to a high-performance port into DDR, clock and reset, and the address map.
# SmartConnect (PG247) converts the masters' 32/64/8-bit data widths to the HP port's and the PS master's
# 32-bit AXI3 to the accelerator's AXI4-Lite.
#
#   PS7 M_AXI_GP<k> ──► smartconnect ──► accelerator s_axi_control      (registers at lite_base, lite_range)
#   accelerator m_axi_* ──► smartconnect ──► PS7 S_AXI_HP<k> (hp_width)  (DDR at 0, ddr_range)
#   PS7 FCLK_CLK<k> (pl_mhz) clocks everything; proc_sys_reset from FCLK_RESET<k>_N
#
# Sourced by build_overlay.tcl after args.tcl; needs Vivado.
proc ::resilq::overlay::create_design {p} {
    set ps_name [ps_names $p]
    set design [dict get $p design]
    create_bd_design $design

    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
    set preset [expr {[dict get $p ps7_mode] eq "board-preset" ? 1 : 0}]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config [list make_external "FIXED_IO, DDR" apply_board_preset $preset Master Disable Slave Disable] $ps
    if {!$preset} {
        # only the part: DDR, clocks and MIO set one by one (the values of PYNQ's PYNQ-Z2 base design)
        set_property -dict [ps7_properties $p] $ps
    }
    set_property -dict [list \
        [dict get $ps_name fclk_freq] [dict get $p pl_mhz] \
        [dict get $ps_name gp_enable] 1 \
        [dict get $ps_name hp_enable] 1 \
        [dict get $ps_name hp_width] [dict get $p hp_width]] $ps

    set ip [create_bd_cell -type ip -vlnv [dict get $p ip_vlnv] [dict get $p ip_instance]]
    set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset:5.0 rst_ps7_0]
    set lite [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 axi_lite_interconnect]
    set_property -dict [list CONFIG.NUM_SI 1 CONFIG.NUM_MI 1] $lite
    set masters [dict get $p masters]
    set mem [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 axi_mem_interconnect]
    set_property -dict [list CONFIG.NUM_SI [llength $masters] CONFIG.NUM_MI 1] $mem

    # AXI-Lite: PS master -> interconnect -> the accelerator's registers
    connect_bd_intf_net [get_bd_intf_pins $ps/[dict get $ps_name gp]] [get_bd_intf_pins $lite/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins $lite/M00_AXI] [get_bd_intf_pins $ip/[dict get $p lite_interface]]
    # AXI masters -> interconnect -> HP port (width conversion in the interconnect)
    set k 0
    foreach m $masters {
        connect_bd_intf_net [get_bd_intf_pins $ip/$m] [get_bd_intf_pins $mem/[format S%02d_AXI $k]]
        incr k
    }
    connect_bd_intf_net [get_bd_intf_pins $mem/M00_AXI] [get_bd_intf_pins $ps/[dict get $ps_name hp]]

    # one clock, one synchronised reset
    connect_bd_net [get_bd_pins $ps/[dict get $ps_name fclk]] \
        [get_bd_pins $ps/[dict get $ps_name gp_clk]] [get_bd_pins $ps/[dict get $ps_name hp_clk]] \
        [get_bd_pins $ip/ap_clk] [get_bd_pins $lite/aclk] [get_bd_pins $mem/aclk] [get_bd_pins $rst/slowest_sync_clk]
    connect_bd_net [get_bd_pins $ps/[dict get $ps_name fclk_reset]] [get_bd_pins $rst/ext_reset_in]
    connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $ip/ap_rst_n] [get_bd_pins $lite/aresetn] \
        [get_bd_pins $mem/aresetn]

    # address map: the registers in the PS's view, all of DDR in each master's view
    assign_bd_address -offset [dict get $p lite_base] -range [dict get $p lite_range] \
        -target_address_space [get_bd_addr_spaces $ps/Data] [get_bd_addr_segs $ip/[dict get $p lite_interface]/Reg] -force
    foreach m $masters {
        assign_bd_address -offset 0x00000000 -range [dict get $p ddr_range] \
            -target_address_space [get_bd_addr_spaces $ip/Data_$m] \
            [get_bd_addr_segs $ps/[dict get $ps_name hp]/[dict get $ps_name hp_segment]] -force
    }
    validate_bd_design
    save_bd_design
    return $design
}
