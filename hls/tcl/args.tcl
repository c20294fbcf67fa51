# Argument parsing for run_hls.tcl: key=value words -> a validated dict. Plain Tcl 8.6, no Vitis
# commands, so the test suite checks it with tclsh.
namespace eval ::resilq {
    variable steps_known {csim csynth cosim export}
    variable defaults [dict create \
        part xc7z020clg400-1 \
        period 10.0 \
        vlnv resilq.org:hls:resilq_accel:5.0 \
        steps {csim csynth cosim export} \
        project resilq_accel_prj \
        solution solution1 \
        top resilq_accel]
}

# The argument words: the script's argv, or -- when it has none (`vitis-run --mode hls --tcl` passes none,
# UG1702) -- the key=value lines of the file $env(RESILQ_HLS_ARGS), written by resilq.hls.project.
proc ::resilq::argument_words {} {
    if {[info exists ::argv] && [llength $::argv] > 0} {
        return $::argv
    }
    if {![info exists ::env(RESILQ_HLS_ARGS)]} {
        error "resilq: no arguments: pass key=value words, or name an argument file in RESILQ_HLS_ARGS"
    }
    set path $::env(RESILQ_HLS_ARGS)
    if {![file readable $path]} {
        error "resilq: argument file '$path' (RESILQ_HLS_ARGS) cannot be read"
    }
    set f [open $path r]
    set words {}
    foreach line [split [read $f] \n] {
        if {[string trim $line] ne ""} {
            lappend words [string trim $line]
        }
    }
    close $f
    return $words
}

# Parse {key=value ...}; keys: part period vlnv steps project solution top src include config vectors.
# Lists (steps, vectors) are comma-separated. Returns a dict or raises an error naming the bad word.
proc ::resilq::parse_args {words} {
    variable defaults
    variable steps_known
    set args $defaults
    foreach word $words {
        set eq [string first = $word]
        if {$eq < 1} {
            error "resilq: argument '$word' is not key=value"
        }
        set key [string range $word 0 [expr {$eq - 1}]]
        set value [string range $word [expr {$eq + 1}] end]
        if {$key ni {part period vlnv steps project solution top src include config vectors}} {
            error "resilq: unknown argument '$key'"
        }
        if {$key in {steps vectors}} {
            set value [split $value ,]
        }
        dict set args $key $value
    }
    if {![string is double -strict [dict get $args period]] || [dict get $args period] <= 0} {
        error "resilq: period must be a positive number of nanoseconds, got '[dict get $args period]'"
    }
    set parts [split [dict get $args vlnv] :]
    if {[llength $parts] != 4 || "" in $parts} {
        error "resilq: vlnv must be vendor:library:name:version, got '[dict get $args vlnv]'"
    }
    if {![regexp {^[0-9]+\.[0-9]+$} [lindex $parts 3]]} {
        error "resilq: the IP version must be MAJOR.MINOR, got '[lindex $parts 3]'"
    }
    lassign $parts vendor library name version
    dict set args vendor $vendor
    dict set args library $library
    dict set args ipname $name
    dict set args version $version
    foreach step [dict get $args steps] {
        if {$step ni $steps_known} {
            error "resilq: unknown step '$step' (known: $steps_known)"
        }
    }
    if {[dict get $args part] eq ""} {
        error "resilq: part must not be empty"
    }
    foreach key {src include config} {
        if {![dict exists $args $key]} {
            error "resilq: missing argument '$key'"
        }
    }
    return $args
}
