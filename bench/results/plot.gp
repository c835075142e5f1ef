# written by bench_compare; run from the results directory
set terminal pngcairo size 1100,650 noenhanced font ',10'
set output 'throughput.png'
set title 'Throughput, 1 producer -> 1 consumer'
set logscale xy
set xlabel 'message size (bytes)'
set ylabel 'messages/s'
set key outside right
set grid
set format y '%.0e'
set xtics ('8' 8, '64' 64, '512' 512, '4K' 4096, '64K' 65536, '1M' 1048576)
plot 'throughput.dat' index 0 using 1:2 with linespoints lw 3 title 'thread zero-copy', \
     'throughput.dat' index 1 using 1:2 with linespoints lw 3 title 'thread copy', \
     'throughput.dat' index 2 using 1:2 with linespoints lw 3 title 'process zero-copy', \
     'throughput.dat' index 3 using 1:2 with linespoints lw 3 title 'process copy', \
     'throughput.dat' index 4 using 1:2 with linespoints lw 3 title 'file zero-copy', \
     'throughput.dat' index 5 using 1:2 with linespoints lw 3 title 'file copy', \
     'throughput.dat' index 6 using 1:2 with linespoints lw 1 title 'pipe copy', \
     'throughput.dat' index 7 using 1:2 with linespoints lw 1 title 'uds copy', \
     'throughput.dat' index 8 using 1:2 with linespoints lw 1 title 'posix-mq copy', \
     'throughput.dat' index 9 using 1:2 with linespoints lw 1 title 'msgr-ipc copy', \
     'throughput.dat' index 10 using 1:2 with linespoints lw 1 title 'msgr-ipc-fast copy', \
     'throughput.dat' index 11 using 1:2 with linespoints lw 1 title 'zmq-inproc copy', \
     'throughput.dat' index 12 using 1:2 with linespoints lw 1 title 'zmq-ipc copy', \
     'throughput.dat' index 13 using 1:2 with linespoints lw 1 title 'nng-ipc copy', \
     'throughput.dat' index 14 using 1:2 with linespoints lw 1 title 'ck_ring zero-copy', \
     'throughput.dat' index 15 using 1:2 with linespoints lw 1 title 'ck_ring copy', \
     'throughput.dat' index 16 using 1:2 with linespoints lw 1 title 'atomic_queue zero-copy', \
     'throughput.dat' index 17 using 1:2 with linespoints lw 1 title 'atomic_queue copy', \
     'throughput.dat' index 18 using 1:2 with linespoints lw 1 title 'iceoryx zero-copy'

set output 'latency.png'
set title 'Round trip, 64-byte messages'
unset logscale
set logscale y
set ylabel 'ns'
unset xlabel
set format y '%g'
set xtics rotate by -40 autofreq
set key inside top left
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
plot 'latency.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9', '' using 5 title 'max'
