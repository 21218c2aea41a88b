/* main.c - placeholder entry point replaced by the CLI wiring. */
#include <stdio.h>
int main(void)
{
    puts("skillscope");
    return 0;
}
