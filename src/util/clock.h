/* Monotonic wall-clock time in seconds, for timings and timeouts (one definition for every layer). */
#ifndef BR_CLOCK_H
#define BR_CLOCK_H

double br_now_seconds(void);

#endif
